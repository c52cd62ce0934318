"""The identity service's periodic tasks: pruning revocation events.

A revocation event can match only tokens issued before it, and those are
refused once ``[token] expiration`` plus ``allow_expired_window`` has
passed; older events only slow every validation down (each one is checked
against every token) and one user can add dozens a second.  Every API
process deletes them at start-up and every ``[token]
revocation_prune_interval`` seconds; the deletion is idempotent, so
processes running it at once do no harm.
"""

from __future__ import annotations

from oslo_config import cfg

from nimbus.identity.service import IdentityService
from nimbus.periodic import PeriodicTask

__all__ = ["periodic_tasks"]

#: Seconds a run may take: one DELETE on an indexed column.
_DEADLINE = 60.0


def periodic_tasks(conf: cfg.ConfigOpts, service: IdentityService) -> list[PeriodicTask]:
    """Return the identity service's periodic tasks.

    :param conf: the nimbus config (``[token]``).
    :param service: the identity service whose revocation list is pruned.
    :returns: ``identity.prune_revocations``, at start-up and every
        ``revocation_prune_interval`` seconds (start-up only when it is 0).
    """
    return [
        PeriodicTask(
            "identity.prune_revocations",
            service.revocations.prune,
            interval=conf.token.revocation_prune_interval,
            deadline=_DEADLINE,
            at_start=True,
        )
    ]
