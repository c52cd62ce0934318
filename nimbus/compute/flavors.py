"""Flavors: the sizes servers are made in, with extra specs and access lists.

A flavor is public (every project may use it) or private (only the
projects on its access list, and cloud admins, see it).  Flavors are
created and deleted by cloud admins; deleting one never changes a server
made from it (a server keeps a copy of its flavor).  The id callers see is
``flavorid``, a string the creator chose or a new UUID.
"""

from __future__ import annotations

import builtins
import dataclasses
import uuid
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from oslo_config import cfg
from sqlalchemy import exc, orm

from nimbus import exception
from nimbus.compute.models import Flavor, FlavorExtraSpec, FlavorProject
from nimbus.context import RequestContext
from nimbus.db import Database
from nimbus.policy import Enforcer

__all__ = ["SORT_KEYS", "FlavorQuery", "FlavorService"]

_RULE = "os_compute_api:os-flavor-manage"
#: What a flavor list may be sorted by (Nova's), to the column.
SORT_KEYS = {
    "created_at": Flavor.created_at,
    "description": Flavor.description,
    "disabled": Flavor.disabled,
    "ephemeral_gb": Flavor.ephemeral_gb,
    "flavorid": Flavor.flavorid,
    "id": Flavor.id,
    "is_public": Flavor.is_public,
    "memory_mb": Flavor.memory_mb,
    "name": Flavor.name,
    "root_gb": Flavor.root_gb,
    "rxtx_factor": Flavor.rxtx_factor,
    "swap": Flavor.swap,
    "updated_at": Flavor.updated_at,
    "vcpus": Flavor.vcpus,
}


@dataclasses.dataclass(frozen=True)
class FlavorQuery:
    """What a flavor list asks for.

    :param is_public: ``True`` public flavors (and, for a project, the
        private ones it may use), ``False`` private ones, ``None`` all; only
        cloud admins get anything but ``True``.
    :param min_ram: only flavors with at least this many MB of RAM.
    :param min_disk: only flavors with at least this many GB of root disk.
    :param limit: the page size, ``None`` for all.
    :param marker: the ``flavorid`` of the last flavor of the previous page.
    :param sort_key: a key of :data:`SORT_KEYS`.
    :param sort_dir: ``asc`` or ``desc``.
    """

    is_public: bool | None = True
    min_ram: int | None = None
    min_disk: int | None = None
    limit: int | None = None
    marker: str | None = None
    sort_key: str = "flavorid"
    sort_dir: str = "asc"


def render(row: Flavor) -> dict[str, Any]:
    """Return a flavor as the service hands it out."""
    return {
        "id": row.flavorid,
        "name": row.name,
        "memory_mb": row.memory_mb,
        "vcpus": row.vcpus,
        "root_gb": row.root_gb,
        "ephemeral_gb": row.ephemeral_gb,
        "swap": row.swap,
        "rxtx_factor": row.rxtx_factor,
        "is_public": row.is_public,
        "disabled": row.disabled,
        "description": row.description,
        "extra_specs": {spec.key: spec.value for spec in row.extra_specs},
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


class FlavorService:
    """Create, list, show and delete flavors; their extra specs and access lists.

    :param conf: the nimbus config.
    :param database: where flavors are kept.
    :param enforcer: the policy.
    """

    def __init__(self, conf: cfg.ConfigOpts, database: Database, enforcer: Enforcer) -> None:
        self.conf = conf
        self.db = database
        self.enforcer = enforcer

    # -- visibility --------------------------------------------------------------

    def _is_admin(self, ctx: RequestContext) -> bool:
        return self.enforcer.check(ctx, "admin_required")

    def _visible(self, ctx: RequestContext) -> sa.ColumnElement[bool] | None:
        """Return the condition of the flavors *ctx* may see (``None``: all)."""
        if self._is_admin(ctx):
            return None
        accessible = sa.select(FlavorProject.flavor_id).where(
            FlavorProject.project_id == (ctx.project_id or "")
        )
        return sa.or_(Flavor.is_public.is_(True), Flavor.id.in_(accessible))

    def _find(self, session: orm.Session, ctx: RequestContext, flavor_id: str) -> Flavor:
        query = sa.select(Flavor).where(Flavor.flavorid == flavor_id)
        visible = self._visible(ctx)
        if visible is not None:
            query = query.where(visible)
        row = session.scalars(query).one_or_none()
        if row is None:
            raise exception.FlavorNotFound(id=flavor_id)
        return row

    # -- flavors -----------------------------------------------------------------

    def list(self, ctx: RequestContext, query: FlavorQuery) -> list[dict[str, Any]]:
        """Return one page of the flavors *ctx* may see that match *query*.

        :raises ValidationError: the marker names no flavor, or the sort key
            is unknown.
        """
        column = SORT_KEYS.get(query.sort_key)
        if column is None:
            raise exception.ValidationError(
                field="sort_key", reason=f"{query.sort_key} is not a flavor sort key"
            )
        if query.sort_dir not in ("asc", "desc"):
            raise exception.ValidationError(field="sort_dir", reason="must be asc or desc")
        statement = sa.select(Flavor)
        visible = self._visible(ctx)
        if visible is not None:
            # A project sees public flavors and the private ones it may use,
            # whatever is_public asked (Nova's answer to a non-admin).
            statement = statement.where(visible)
        elif query.is_public is not None:
            statement = statement.where(Flavor.is_public.is_(query.is_public))
        if query.min_ram is not None:
            statement = statement.where(Flavor.memory_mb >= query.min_ram)
        if query.min_disk is not None:
            statement = statement.where(Flavor.root_gb >= query.min_disk)
        descending = query.sort_dir == "desc"
        # NULLs first ascending, last descending, on every database.
        nulls = column.is_(None)
        order: list[Any] = [
            nulls.asc() if descending else nulls.desc(),
            column.desc() if descending else column.asc(),
        ]
        if column is not Flavor.id:
            order.append(Flavor.id.desc() if descending else Flavor.id.asc())
        with self.db.reader() as session:
            if query.marker is not None:
                marker = session.scalars(
                    sa.select(Flavor).where(Flavor.flavorid == query.marker)
                ).one_or_none()
                if marker is None:
                    raise exception.ValidationError(
                        field="marker", reason=f"marker [{query.marker}] not found"
                    )
                statement = statement.where(_after(column, marker, descending))
            statement = statement.order_by(*order)
            if query.limit is not None:
                statement = statement.limit(query.limit)
            return [render(row) for row in session.scalars(statement)]

    def get(self, ctx: RequestContext, flavor_id: str) -> dict[str, Any]:
        """Return one flavor. :raises FlavorNotFound: none *ctx* may see has that id."""
        with self.db.reader() as session:
            return render(self._find(session, ctx, flavor_id))

    def create(self, ctx: RequestContext, values: Mapping[str, Any]) -> dict[str, Any]:
        """Create a flavor from validated *values* and return it.

        :param values: ``name``, ``memory_mb``, ``vcpus``, ``root_gb`` and
            optionally ``id`` (``None``: a new UUID), ``ephemeral_gb``,
            ``swap``, ``rxtx_factor``, ``is_public``, ``description``.
        :raises Conflict: the name or the id is taken.
        """
        self.enforcer.authorize(ctx, f"{_RULE}:create")
        flavor_id = values.get("id") or str(uuid.uuid4())
        name = values["name"]

        def _create(session: orm.Session) -> dict[str, Any]:
            for column, value, what in (
                (Flavor.name, name, f"Flavor with name {name} already exists."),
                (Flavor.flavorid, flavor_id, f"Flavor with ID {flavor_id} already exists."),
            ):
                if session.scalar(sa.select(Flavor.id).where(column == value)) is not None:
                    raise exception.Conflict(what)
            row = Flavor(
                flavorid=flavor_id,
                name=name,
                memory_mb=values["memory_mb"],
                vcpus=values["vcpus"],
                root_gb=values["root_gb"],
                ephemeral_gb=values.get("ephemeral_gb", 0),
                swap=values.get("swap", 0),
                rxtx_factor=values.get("rxtx_factor", 1.0),
                is_public=values.get("is_public", True),
                disabled=False,
                description=values.get("description"),
            )
            session.add(row)
            session.flush()
            return render(row)

        try:
            return self.db.write(_create)
        except exc.IntegrityError as ex:
            # Two creates of one name or id at once: the database's unique
            # index decides, and the loser is told as if it came second.
            raise exception.Conflict(f"Flavor with name {name} or ID {flavor_id} exists.") from ex

    def delete(self, ctx: RequestContext, flavor_id: str) -> None:
        """Delete a flavor (servers made from it keep their copy).

        :raises FlavorNotFound: no flavor has that id.
        """
        self.enforcer.authorize(ctx, f"{_RULE}:delete")

        def _delete(session: orm.Session) -> None:
            row = self._find(session, ctx, flavor_id)
            session.delete(row)
            session.flush()

        self.db.write(_delete)

    # -- extra specs -------------------------------------------------------------

    def extra_specs(self, ctx: RequestContext, flavor_id: str) -> dict[str, str]:
        """Return a flavor's extra specs."""
        self.enforcer.authorize(ctx, "os_compute_api:os-flavor-extra-specs:index")
        return dict(self.get(ctx, flavor_id)["extra_specs"])

    def extra_spec(self, ctx: RequestContext, flavor_id: str, key: str) -> str:
        """Return one extra spec. :raises NotFound: the flavor has no such key."""
        self.enforcer.authorize(ctx, "os_compute_api:os-flavor-extra-specs:show")
        specs = self.get(ctx, flavor_id)["extra_specs"]
        if key not in specs:
            raise _no_spec(flavor_id, key)
        return str(specs[key])

    def set_extra_specs(
        self, ctx: RequestContext, flavor_id: str, specs: Mapping[str, str], *, verb: str
    ) -> dict[str, str]:
        """Add or replace extra specs; return those set.

        :param verb: the policy verb, ``create`` (POST) or ``update`` (PUT).
        """
        self.enforcer.authorize(ctx, f"os_compute_api:os-flavor-extra-specs:{verb}")

        def _set(session: orm.Session) -> None:
            row = self._find(session, ctx, flavor_id)
            existing = {spec.key: spec for spec in row.extra_specs}
            for key, value in specs.items():
                if key in existing:
                    existing[key].value = value
                else:
                    row.extra_specs.append(FlavorExtraSpec(key=key, value=value))
            session.flush()

        self.db.write(_set)
        return dict(specs)

    def delete_extra_spec(self, ctx: RequestContext, flavor_id: str, key: str) -> None:
        """Remove one extra spec. :raises NotFound: the flavor has no such key."""
        self.enforcer.authorize(ctx, "os_compute_api:os-flavor-extra-specs:delete")

        def _delete(session: orm.Session) -> None:
            row = self._find(session, ctx, flavor_id)
            found = [spec for spec in row.extra_specs if spec.key == key]
            if not found:
                raise _no_spec(flavor_id, key)
            row.extra_specs.remove(found[0])
            session.flush()

        self.db.write(_delete)

    # -- access ------------------------------------------------------------------

    def access_list(self, ctx: RequestContext, flavor_id: str) -> builtins.list[str]:
        """Return the projects that may use a private flavor.

        :raises NotFound: the flavor is public (it has no list).
        """
        self.enforcer.authorize(ctx, "os_compute_api:os-flavor-access")
        with self.db.reader() as session:
            row = self._find(session, ctx, flavor_id)
            if row.is_public:
                raise exception.NotFound(
                    "Access list not available for public flavors.", kind="flavor", id=flavor_id
                )
            return sorted(project.project_id for project in row.projects)

    def add_access(
        self, ctx: RequestContext, flavor_id: str, project_id: str
    ) -> builtins.list[str]:
        """Let *project_id* use a private flavor; return the access list.

        :raises Conflict: the flavor is public, or the project is on the list.
        """
        self.enforcer.authorize(ctx, "os_compute_api:os-flavor-access:add_tenant_access")

        def _add(session: orm.Session) -> builtins.list[str]:
            row = self._find(session, ctx, flavor_id)
            if row.is_public:
                raise exception.Conflict("Can not add access to a public flavor.")
            projects = {project.project_id for project in row.projects}
            if project_id in projects:
                raise exception.Conflict(
                    f"Flavor access already exists for flavor {flavor_id} and project "
                    f"{project_id} combination."
                )
            row.projects.append(FlavorProject(project_id=project_id))
            session.flush()
            return sorted(projects | {project_id})

        try:
            return self.db.write(_add)
        except exc.IntegrityError as ex:
            raise exception.Conflict(
                f"Flavor access already exists for flavor {flavor_id} and project "
                f"{project_id} combination."
            ) from ex

    def remove_access(
        self, ctx: RequestContext, flavor_id: str, project_id: str
    ) -> builtins.list[str]:
        """Take *project_id* off a private flavor's list; return the list.

        :raises NotFound: the project is not on the list.
        """
        self.enforcer.authorize(ctx, "os_compute_api:os-flavor-access:remove_tenant_access")

        def _remove(session: orm.Session) -> builtins.list[str]:
            row = self._find(session, ctx, flavor_id)
            found = [p for p in row.projects if p.project_id == project_id]
            if not found:
                raise exception.NotFound(
                    f"Flavor access not found for {flavor_id} / {project_id} combination.",
                    kind="flavor access",
                    id=project_id,
                )
            row.projects.remove(found[0])
            session.flush()
            return sorted(p.project_id for p in row.projects)

        return self.db.write(_remove)


def _no_spec(flavor_id: str, key: str) -> exception.NotFound:
    return exception.NotFound(
        f"Flavor {flavor_id} has no extra specs with key {key}.", kind="extra spec", id=key
    )


def _after(column: Any, marker: Flavor, descending: bool) -> sa.ColumnElement[bool]:
    """Return the condition of the rows after *marker* in the list's order.

    The order is NULLs first (ascending) or last (descending), then the
    column, then the internal id, so that equal values page stably.
    """
    if column.key == "id":
        return Flavor.id < marker.id if descending else Flavor.id > marker.id
    value = getattr(marker, column.key)
    later_id = Flavor.id < marker.id if descending else Flavor.id > marker.id
    if value is None:
        tie = sa.and_(column.is_(None), later_id)
        # Ascending, every non-NULL value comes after the NULLs.
        return tie if descending else sa.or_(tie, column.is_not(None))
    beyond = column < value if descending else column > value
    result = sa.or_(beyond, sa.and_(column == value, later_id))
    # Descending, the NULLs come last.
    return sa.or_(result, column.is_(None)) if descending else result
