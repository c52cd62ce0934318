"""The scheduler on the bus: the ``scheduler`` topic's RPC endpoint.

The conductor calls it; arguments and answers are plain JSON (a request
spec as a dict, selections as dicts), turned into the scheduler's own
types here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from nimbus.compute.scheduler import (
    Destination,
    RequestSpec,
    Scheduler,
    Selection,
    ServerGroupSpec,
)
from nimbus.context import RequestContext

__all__ = ["SchedulerEndpoint", "spec_from_record"]

_SPEC_FIELDS = (
    "project_id",
    "user_id",
    "memory_mb",
    "vcpus",
    "root_gb",
    "ephemeral_gb",
    "swap_mb",
    "extra_specs",
    "image_properties",
    "availability_zone",
)


def spec_from_record(record: Mapping[str, Any], count: int = 1) -> RequestSpec:
    """Return the scheduler's request spec of a create's JSON record."""
    values = {name: record[name] for name in _SPEC_FIELDS if name in record}
    hints = {k: tuple(v) for k, v in (record.get("scheduler_hints") or {}).items()}
    group = record.get("group")
    return RequestSpec(
        **values,
        scheduler_hints=hints,
        num_instances=count,
        group=None
        if not group
        else ServerGroupSpec(group["uuid"], group["policy"], tuple(group["members"])),
    )


def _selection_record(selection: Selection) -> dict[str, Any]:
    return {
        "instance_uuid": selection.instance_uuid,
        "host": selection.host,
        "nodename": selection.nodename,
        "node_uuid": selection.node_uuid,
        "alternates": [
            {"host": d.host, "nodename": d.nodename, "node_uuid": d.node_uuid}
            for d in selection.alternates
        ],
    }


class SchedulerEndpoint:
    """RPC endpoint of the ``scheduler`` topic, over one :class:`Scheduler`."""

    def __init__(self, scheduler: Scheduler) -> None:
        self._scheduler = scheduler

    def select_destinations(
        self, ctx: RequestContext, spec: Mapping[str, Any], instance_uuids: Sequence[str]
    ) -> list[dict[str, Any]]:
        """Choose and claim a host for each instance (see :meth:`Scheduler.select_destinations`)."""
        request = spec_from_record(spec, len(instance_uuids))
        return [
            _selection_record(s)
            for s in self._scheduler.select_destinations(request, list(instance_uuids))
        ]

    def reschedule(
        self,
        ctx: RequestContext,
        spec: Mapping[str, Any],
        instance_uuid: str,
        alternates: Sequence[Mapping[str, str]],
    ) -> dict[str, Any]:
        """Move a failed build's claim to an alternate host."""
        destinations = [Destination(a["host"], a["nodename"], a["node_uuid"]) for a in alternates]
        return _selection_record(
            self._scheduler.reschedule(spec_from_record(spec), instance_uuid, destinations)
        )

    def release(self, ctx: RequestContext, instance_uuid: str) -> bool:
        """Give back an instance's claim."""
        return self._scheduler.release(instance_uuid)
