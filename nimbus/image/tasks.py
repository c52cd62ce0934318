"""The image service's periodic tasks: giving up dead uploads and dead tasks.

An upload holds its image in ``saving`` and refreshes its heartbeat (the
image's ``updated_at``) at most every ``[image] upload_heartbeat_interval``
seconds while data arrives (:mod:`nimbus.image.data`).  Every API process,
on every host, runs the task below at start-up and every ``[image]
upload_recovery_interval`` seconds: it puts back to ``queued`` each image
whose heartbeat is older than ``[image] upload_stale_after`` and removes
the store's partial data of that age.  A process killed mid-upload (``kill
-9``, OOM, power loss) therefore leaves its image in ``saving`` for about
``upload_stale_after`` plus one interval, and the image then takes a new
upload, without any restart.

Why the start-up run uses the same age, not 0: in a deployment of several
gunicorn workers or hosts on one database, a worker that starts (or that
gunicorn restarts after a crash) shares the table with workers that are
uploading right now, and taking every ``saving`` image would cut their
uploads off.  Only the embedded ``nimbus up`` knows that no process can be
uploading before it serves, so it makes its own explicit call with
``older_than=0`` (:func:`nimbus.cmd.up.prepare`), which frees an image cut
by the previous run at once instead of after ``upload_stale_after``.

Glance tasks (:mod:`nimbus.image.task_service`) follow the same rule with
the same options: each process refreshes the heartbeat of the tasks it
runs or has queued, and fails those whose heartbeat is older than
``upload_stale_after``; the same run removes tasks past their
``expires_at``.
"""

from __future__ import annotations

import functools

from oslo_config import cfg

from nimbus import exception
from nimbus.image.data import ImageData
from nimbus.image.task_service import TaskService
from nimbus.periodic import PeriodicTask

__all__ = ["check_options", "periodic_tasks"]

#: Seconds a run may take: one UPDATE and a scan of the store's partial writes.
_DEADLINE = 60.0


def check_options(conf: cfg.ConfigOpts) -> None:
    """Check that the upload heartbeat options agree with each other.

    :raises ValidationError: ``upload_stale_after`` is not greater than
        ``upload_heartbeat_interval``: live uploads would be taken for dead.
    """
    options = conf.image
    if options.upload_stale_after <= options.upload_recovery_interval:
        raise exception.ValidationError(
            field="[image] upload_stale_after",
            reason=f"must be greater than [image] upload_recovery_interval"
            f" ({options.upload_stale_after:g} <= {options.upload_recovery_interval:g}),"
            " or the tasks of live processes are taken for dead",
        )
    if options.upload_stale_after <= options.upload_heartbeat_interval:
        raise exception.ValidationError(
            field="[image] upload_stale_after",
            reason=f"must be greater than [image] upload_heartbeat_interval"
            f" ({options.upload_stale_after:g} <= {options.upload_heartbeat_interval:g}),"
            " or live uploads are taken for dead",
        )


def periodic_tasks(
    conf: cfg.ConfigOpts, data: ImageData, tasks: TaskService | None = None
) -> list[PeriodicTask]:
    """Return the image service's periodic tasks.

    :param conf: the nimbus config (``[image]``).
    :param data: the image data path whose dead uploads are recovered.
    :param tasks: the tasks whose dead ones are failed and expired ones removed.
    :returns: ``image.recover_stale_uploads`` (and ``image.recover_tasks``),
        at start-up and every ``upload_recovery_interval`` seconds.
    :raises ValidationError: the heartbeat options disagree (see :func:`check_options`).
    """
    check_options(conf)
    options = conf.image
    found = [
        PeriodicTask(
            "image.recover_stale_uploads",
            functools.partial(data.recover, older_than=options.upload_stale_after),
            interval=options.upload_recovery_interval,
            deadline=_DEADLINE,
            at_start=True,
        )
    ]
    if tasks is not None:
        found.append(
            PeriodicTask(
                "image.recover_tasks",
                functools.partial(tasks.recover_and_expire, older_than=options.upload_stale_after),
                interval=options.upload_recovery_interval,
                deadline=_DEADLINE,
                at_start=True,
            )
        )
    return found
