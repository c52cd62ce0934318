"""Claims: the conditional UPDATE that takes a node's room, and its undoing.

A claim is one transaction: ``UPDATE compute_nodes SET vcpus_used =
vcpus_used + :vcpus, ... WHERE id = :id AND <it still fits>`` and the
instance's row in ``allocations``.  The condition is evaluated by the
database on the row as it is when the UPDATE runs (MariaDB and PostgreSQL
lock the row and re-check; SQLite serialises writers), so two schedulers
deciding on stale caches can never over-commit a node: the second UPDATE
matches no row and that scheduler tries its next host.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from nimbus.compute.scheduler.hosts import NODE_COLUMNS
from nimbus.compute.scheduler.models import Allocation, ComputeNode
from nimbus.db.models import utcnow

__all__ = ["Claimed", "Request", "claim", "existing", "release"]

_N = ComputeNode.__table__.c
_A = Allocation.__table__.c


@dataclasses.dataclass(frozen=True)
class Request:
    """What one instance takes from a node."""

    vcpus: int
    memory_mb: int
    disk_gb: int
    project_id: str | None = None


@dataclasses.dataclass(frozen=True)
class Claimed:
    """An allocation: where an instance's claim is."""

    instance_uuid: str
    node_id: int
    host: str
    vcpus: int
    memory_mb: int
    disk_gb: int


def existing(session: orm.Session, instance_uuid: str) -> Claimed | None:
    """Return the claim of *instance_uuid*, if it has one."""
    row = session.connection().execute(_EXISTING, {"p_uuid": instance_uuid}).one_or_none()
    if row is None:
        return None
    return Claimed(instance_uuid, *row)


def _coalesce(column: Any, option: str) -> Any:
    return sa.func.coalesce(column, sa.bindparam(f"d_{option}", type_=sa.Float))


def _change(sign: int) -> Any:
    return (
        sa.update(ComputeNode)
        .where(_N.id == sa.bindparam("p_node"))
        .values(
            vcpus_used=_N.vcpus_used + sign * sa.bindparam("p_vcpus"),
            memory_mb_used=_N.memory_mb_used + sign * sa.bindparam("p_memory"),
            local_gb_used=_N.local_gb_used + sign * sa.bindparam("p_disk"),
            running_vms=_N.running_vms + sign,
            generation=_N.generation + 1,
            updated_at=sa.bindparam("p_now"),
            updated_by=sa.bindparam("p_me"),
        )
    )


# Built once: the statement cache then skips compiling them for every claim.
_CLAIM = _change(1).where(
    _N.vcpus_used + sa.bindparam("p_vcpus")
    <= _N.vcpus * _coalesce(_N.cpu_allocation_ratio, "cpu_allocation_ratio")
    - _coalesce(_N.reserved_host_cpus, "reserved_host_cpus"),
    _N.vcpus >= sa.bindparam("p_vcpus"),
    _N.memory_mb_used + sa.bindparam("p_memory")
    <= _N.memory_mb * _coalesce(_N.ram_allocation_ratio, "ram_allocation_ratio")
    - _coalesce(_N.reserved_host_memory_mb, "reserved_host_memory_mb"),
    _N.memory_mb >= sa.bindparam("p_memory"),
    _N.local_gb_used + sa.bindparam("p_disk")
    <= _N.local_gb * _coalesce(_N.disk_allocation_ratio, "disk_allocation_ratio")
    - _coalesce(_N.reserved_host_disk_mb, "reserved_host_disk_mb") / 1024.0,
)
_RELEASE = _change(-1)
_INSERT = sa.insert(Allocation)
_READ_BACK = sa.select(*NODE_COLUMNS).where(_N.id == sa.bindparam("p_node"))
_DELETE = sa.delete(Allocation).where(_A.instance_uuid == sa.bindparam("p_uuid"))
_EXISTING = sa.select(_A.node_id, _A.host, _A.vcpus, _A.memory_mb, _A.disk_gb).where(
    _A.instance_uuid == sa.bindparam("p_uuid")
)


def _rowcount(result: Any) -> int:
    return int(result.rowcount)


def _params(node_id: int, request: Request, me: str) -> dict[str, Any]:
    return {
        "p_node": node_id,
        "p_vcpus": request.vcpus,
        "p_memory": request.memory_mb,
        "p_disk": request.disk_gb,
        "p_now": utcnow(),
        "p_me": me,
    }


def claim(
    session: orm.Session,
    *,
    instance_uuid: str,
    node_id: int,
    host: str,
    request: Request,
    fallback: Mapping[str, float],
    me: str,
) -> Any | None:
    """Take *request* on node *node_id* for *instance_uuid*, if it still fits.

    :param fallback: the ratios and reserved amounts to use where the node
        sets none (its aggregates', else the options).
    :param me: the scheduler's id, written to ``updated_by``.
    :returns: the node row as it is after the claim (:data:`NODE_COLUMNS`),
        or ``None`` when the node had no room left.
    :raises sqlalchemy.exc.IntegrityError: *instance_uuid* holds a claim already.
    """
    conn = session.connection()
    params = _params(node_id, request, me)
    params.update({f"d_{option}": float(value) for option, value in fallback.items()})
    if _rowcount(conn.execute(_CLAIM, params)) != 1:
        return None
    conn.execute(
        _INSERT,
        {
            "instance_uuid": instance_uuid,
            "node_id": node_id,
            "host": host,
            "vcpus": request.vcpus,
            "memory_mb": request.memory_mb,
            "disk_gb": request.disk_gb,
            "project_id": request.project_id,
            "created_at": params["p_now"],
        },
    )
    return conn.execute(_READ_BACK, {"p_node": node_id}).one()


def release(session: orm.Session, instance_uuid: str, *, me: str) -> Any | None:
    """Give back the claim of *instance_uuid*.

    :returns: the node row after the release, or ``None`` when there was no claim.
    """
    held = existing(session, instance_uuid)
    if held is None:
        return None
    conn = session.connection()
    if _rowcount(conn.execute(_DELETE, {"p_uuid": instance_uuid})) != 1:
        return None
    request = Request(held.vcpus, held.memory_mb, held.disk_gb)
    conn.execute(_RELEASE, _params(held.node_id, request, me))
    return conn.execute(_READ_BACK, {"p_node": held.node_id}).one()
