"""The service catalog: regions, services and their endpoints."""

from __future__ import annotations

import dataclasses
import functools
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from nimbus import exception
from nimbus.common.changes import Change, Changes
from nimbus.context import RequestContext
from nimbus.db import Database
from nimbus.db.repository import Repository, row_dict
from nimbus.identity import models
from nimbus.identity.common import INTERNAL, Manager, new_id
from nimbus.policy import Enforcer

__all__ = ["CatalogManager", "INTERFACES"]

INTERFACES = ("public", "internal", "admin")
_ENDPOINT_COLUMNS = ("service_id", "interface", "url", "region_id", "enabled")


def _region_dict(row: models.Region) -> dict[str, Any]:
    return row_dict(row, ("id", "parent_region_id"), description=row.description or "")


def _service_dict(row: models.Service) -> dict[str, Any]:
    return row_dict(row, ("id", "type", "name", "enabled"), description=row.description or "")


def _endpoint_dict(row: models.Endpoint) -> dict[str, Any]:
    return row_dict(row, ("id", *_ENDPOINT_COLUMNS), region=row.region_id)


def _id(values: Mapping[str, Any]) -> str:
    return str(values.get("id"))


def _substitute(url: str, values: dict[str, str | None]) -> str | None:
    """Fill ``$(project_id)s``-style placeholders; None when one has no value."""
    for key, value in values.items():
        for placeholder in (f"$({key})s", f"%({key})s"):
            if placeholder in url:
                if value is None:
                    return None
                url = url.replace(placeholder, value)
    return url


@dataclasses.dataclass(eq=False)
class CatalogManager(Manager):
    """Regions, services and endpoints, and the catalog rendered into tokens.

    :param database: nimbus's database.
    :param enforcer: checks the ``identity:*`` rules.
    :param cache_time: seconds a rendered catalog is reused; writes made
        through this manager clear it at once.
    :param clock: injected for tests.
    :param changes: stamps shared with the server's other workers: a write
        made through one of them clears the rendered catalog here too.
    """

    database: Database
    enforcer: Enforcer
    _: dataclasses.KW_ONLY
    cache_time: float = 30.0
    clock: Callable[[], float] = time.monotonic
    changes: Changes | None = None

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        # (when rendered, the stamp of Change.CATALOG read before, the catalog)
        self._cached: tuple[float, int | None, list[dict[str, Any]]] | None = None
        regions = Repository(self.database, models.Region, kind="region")
        # Services and endpoints have no unique names: a conflict names the id.
        services = Repository(self.database, models.Service, kind="service", conflict_reason=_id)
        endpoints = Repository(self.database, models.Endpoint, kind="endpoint", conflict_reason=_id)
        declare = functools.partial(self.kind, on_change=self._invalidate)
        self.regions = declare(regions, _region_dict, columns=("parent_region_id", "description"))
        self.services = declare(
            services, _service_dict, columns=("type", "name", "description", "enabled")
        )
        self.endpoints = declare(endpoints, _endpoint_dict, columns=_ENDPOINT_COLUMNS)

    def _invalidate(self) -> None:
        with self._lock:
            self._cached = None
        if self.changes is not None:
            self.changes.record(Change.CATALOG)

    def _stamp(self) -> int | None:
        return None if self.changes is None else self.changes.stamp(Change.CATALOG)

    # -- regions -----------------------------------------------------------

    def create_region(
        self,
        ctx: RequestContext,
        *,
        region_id: str | None = None,
        description: str = "",
        parent_region_id: str | None = None,
        extra: dict[str, Any] | None = None,
        id_in_url: bool = False,
    ) -> dict[str, Any]:
        """Create a region.

        :param id_in_url: the caller named the id in the URL (``PUT``), which
            the policy target then carries.
        :raises Conflict: the id is taken.
        :raises ValidationError: the parent does not exist.
        """
        values = {
            "id": region_id or new_id(),
            "description": description,
            "parent_region_id": parent_region_id,
            "extra": extra or {},
        }
        return self.regions.create(
            ctx,
            values,
            check=lambda session: self._check_refs(session, parent_region_id=parent_region_id),
            target_id=region_id if id_in_url else None,
        )

    def _ensure_region(self, region_id: str) -> None:
        """Create *region_id* unless it exists (what the legacy ``region`` attribute does)."""
        if self.regions.repository.find(id=region_id) is not None:
            return
        try:
            self.create_region(INTERNAL, region_id=region_id)
        except exception.Conflict:
            pass  # another request created it meanwhile

    def update_region(
        self, ctx: RequestContext, region_id: str, changes: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Change a region's description or parent.

        :raises ValidationError: the new parent is unknown or makes a cycle.
        """

        def _check(session: orm.Session, row: models.Region) -> None:
            parent_id = changes.get("parent_region_id")
            if parent_id is not None:
                self._check_refs(session, parent_region_id=parent_id)
                self._check_cycle(session, region_id, parent_id)

        return self.regions.update(ctx, region_id, changes, check=_check, reason=region_id)

    def _check_cycle(self, session: orm.Session, region_id: str, parent_id: str) -> None:
        seen = set()
        current: str | None = parent_id
        while current is not None and current not in seen:
            if current == region_id:
                raise exception.ValidationError(
                    field="parent_region_id", reason="a region cannot be its own ancestor"
                )
            seen.add(current)
            row = self.regions.repository.find(id=current, session=session)
            current = row.parent_region_id if row is not None else None

    def delete_region(self, ctx: RequestContext, region_id: str) -> None:
        """Delete a region. :raises Conflict: endpoints or child regions use it."""

        def _check(session: orm.Session, row: models.Region) -> None:
            if self.endpoints.repository.count(
                filters={"region_id": region_id}, session=session
            ) or self.regions.repository.count(
                filters={"parent_region_id": region_id}, session=session
            ):
                raise exception.Conflict(
                    kind="region", reason=f"region {region_id} still has endpoints or children"
                )

        self.regions.delete(ctx, region_id, check=_check)

    # -- services ----------------------------------------------------------

    def create_service(
        self,
        ctx: RequestContext,
        *,
        type: str,
        name: str = "",
        description: str = "",
        enabled: bool = True,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Create a service entry."""
        values = {"type": type, "name": name, "description": description, "enabled": enabled}
        return self.services.create(ctx, {"id": new_id(), **values, "extra": extra or {}})

    def update_service(
        self, ctx: RequestContext, service_id: str, changes: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Change a service's type, name, description, enabled flag or extra keys."""
        return self.services.update(ctx, service_id, changes)

    def delete_service(self, ctx: RequestContext, service_id: str) -> None:
        """Delete a service and its endpoints."""
        self.services.delete(
            ctx,
            service_id,
            check=lambda session, row: self._delete_endpoints_of(session, service_id),
        )

    def _delete_endpoints_of(self, session: orm.Session, service_id: str) -> None:
        self.endpoints.repository.delete_where(
            models.Endpoint.service_id == service_id, session=session
        )

    # -- endpoints ---------------------------------------------------------

    def _check_refs(self, session: orm.Session, **refs: str | None) -> None:
        """Raise ValidationError unless every service or region named exists.

        :param refs: field name (``service_id``, ``region_id``,
            ``parent_region_id``) to the id it names; None names nothing.
        """
        for field, item_id in refs.items():
            repo = (self.services if field == "service_id" else self.regions).repository
            if item_id is not None and repo.find(id=item_id, session=session) is None:
                raise exception.ValidationError(
                    field=field, reason=f"{repo.kind} {item_id} does not exist"
                )

    def _legacy_region(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Resolve the v2-era ``region`` key of *values* into ``region_id``.

        Keystone creates a region named only by the legacy attribute.
        """
        values = dict(values)
        region = values.pop("region", None)
        if values.get("region_id") is None and region is not None:
            self._ensure_region(region)
            values["region_id"] = region
        return values

    def create_endpoint(
        self,
        ctx: RequestContext,
        *,
        service_id: str,
        interface: str,
        url: str,
        region_id: str | None = None,
        region: str | None = None,
        enabled: bool = True,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Create an endpoint of a service.

        :param region: the legacy name of *region_id*; a region it names
            that does not exist is created.
        :raises ValidationError: the service or region does not exist.
        """
        self.endpoints.check(ctx, "create")
        region_id = self._legacy_region({"region_id": region_id, "region": region})["region_id"]
        values = {
            "id": new_id(),
            "service_id": service_id,
            "interface": interface,
            "url": url,
            "region_id": region_id,
            "enabled": enabled,
            "extra": extra or {},
        }
        return self.endpoints.create(
            INTERNAL,
            values,
            check=lambda s: self._check_refs(s, service_id=service_id, region_id=region_id),
        )

    def update_endpoint(
        self, ctx: RequestContext, endpoint_id: str, changes: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Change an endpoint's attributes (``region`` as in :meth:`create_endpoint`)."""
        self.endpoints.check(ctx, "update", endpoint_id)
        changes = self._legacy_region(changes)

        def _check(session: orm.Session, row: models.Endpoint) -> None:
            self._check_refs(
                session, service_id=changes.get("service_id"), region_id=changes.get("region_id")
            )

        return self.endpoints.update(INTERNAL, endpoint_id, changes, check=_check)

    def delete_endpoint(self, ctx: RequestContext, endpoint_id: str) -> None:
        """Delete an endpoint."""
        self.endpoints.delete(ctx, endpoint_id)

    # -- the token catalog --------------------------------------------------

    def raw_catalog(self) -> list[dict[str, Any]]:
        """Return the enabled services with their endpoints, URLs not filled in.

        The list is cached; a changed catalog is a new list, never the old one changed.
        """
        now = self.clock()
        stamp = self._stamp()
        with self._lock:
            cached = self._cached
            if cached is not None and now - cached[0] < self.cache_time and cached[1] == stamp:
                return cached[2]
        with self.database.reader() as session:
            services = session.scalars(
                sa.select(models.Service)
                .where(models.Service.enabled.is_(True))
                .order_by(models.Service.type, models.Service.id)
            ).all()
            endpoints = session.scalars(
                sa.select(models.Endpoint)
                .where(models.Endpoint.enabled.is_(True))
                .order_by(models.Endpoint.id)
            ).all()
        by_service: dict[str, list[models.Endpoint]] = {}
        for ep in endpoints:
            by_service.setdefault(ep.service_id, []).append(ep)
        catalog = [
            {
                "id": svc.id,
                "type": svc.type,
                "name": svc.name,
                "endpoints": [
                    {
                        "id": ep.id,
                        "interface": ep.interface,
                        "region": ep.region_id,
                        "region_id": ep.region_id,
                        "url": ep.url,
                    }
                    for ep in by_service.get(svc.id, [])
                ],
            }
            for svc in services
        ]
        with self._lock:
            self._cached = (now, stamp, catalog)
        return catalog

    def catalog_for_caller(self, ctx: RequestContext) -> list[dict[str, Any]]:
        """Return the catalog of the caller's token (``GET /v3/auth/catalog``).

        :raises Forbidden: the token is unscoped.
        """
        if ctx.project_id is None and ctx.domain_id is None:
            raise exception.Forbidden("An unscoped token has no catalog; scope it first.")
        return self.catalog_for(user_id=ctx.user_id, project_id=ctx.project_id)

    def catalog_for(self, *, user_id: str | None, project_id: str | None) -> list[dict[str, Any]]:
        """Return the catalog as a token shows it, URLs filled for the project.

        Endpoints whose URL needs a project id are left out of tokens that
        have none.
        """
        values = {"project_id": project_id, "tenant_id": project_id, "user_id": user_id}
        result = []
        for svc in self.raw_catalog():
            endpoints = []
            for ep in svc["endpoints"]:
                url = _substitute(ep["url"], values)
                if url is not None:
                    endpoints.append({**ep, "url": url})
            result.append({**svc, "endpoints": endpoints})
        return result
