"""The service catalog: regions, services and their endpoints."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from nimbus import exception
from nimbus.db import Database, models
from nimbus.identity.common import (
    Page,
    apply_changes,
    apply_page,
    filter_equal,
    new_id,
    write_unique,
)

__all__ = ["CatalogManager", "INTERFACES"]

INTERFACES = ("public", "internal", "admin")


def _region_dict(row: models.Region) -> dict[str, Any]:
    return {
        **(row.extra or {}),
        "id": row.id,
        "description": row.description or "",
        "parent_region_id": row.parent_region_id,
    }


def _service_dict(row: models.Service) -> dict[str, Any]:
    return {
        **(row.extra or {}),
        "id": row.id,
        "type": row.type,
        "name": row.name,
        "description": row.description or "",
        "enabled": row.enabled,
    }


def _endpoint_dict(row: models.Endpoint) -> dict[str, Any]:
    return {
        **(row.extra or {}),
        "id": row.id,
        "service_id": row.service_id,
        "interface": row.interface,
        "url": row.url,
        "region_id": row.region_id,
        "region": row.region_id,
        "enabled": row.enabled,
    }


def _substitute(url: str, values: dict[str, str | None]) -> str | None:
    """Fill ``$(project_id)s``-style placeholders; None when one has no value."""
    for key, value in values.items():
        for placeholder in (f"$({key})s", f"%({key})s"):
            if placeholder in url:
                if value is None:
                    return None
                url = url.replace(placeholder, value)
    return url


class CatalogManager:
    """Regions, services and endpoints, and the catalog rendered into tokens.

    :param database: nimbus's database.
    :param cache_time: seconds a rendered catalog is reused; writes made
        through this manager clear it at once.
    :param clock: injected for tests.
    """

    def __init__(
        self,
        database: Database,
        *,
        cache_time: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db = database
        self.cache_time = cache_time
        self.clock = clock
        self._lock = threading.Lock()
        self._cached: tuple[float, list[dict[str, Any]]] | None = None

    def _invalidate(self) -> None:
        with self._lock:
            self._cached = None

    def _get(self, session: Any, model: type, kind: str, item_id: str) -> Any:
        row = session.get(model, item_id)
        if row is None:
            raise exception.NotFound(kind=kind, id=item_id)
        return row

    def _write(self, fn: Callable[[Any], Any], kind: str, reason: str) -> Any:
        result = write_unique(self.db, fn, kind, reason)
        self._invalidate()
        return result

    # -- regions -----------------------------------------------------------

    def get_region(self, region_id: str) -> dict[str, Any]:
        """Return one region. :raises NotFound: unknown id."""
        with self.db.reader() as session:
            return _region_dict(self._get(session, models.Region, "region", region_id))

    def list_regions(
        self, *, parent_region_id: str | None = None, page: Page = Page()
    ) -> list[dict[str, Any]]:
        """Return the regions, optionally only the children of one."""
        stmt = filter_equal(
            sa.select(models.Region), models.Region, parent_region_id=parent_region_id
        )
        with self.db.reader() as session:
            return [
                _region_dict(r) for r in session.scalars(apply_page(stmt, models.Region.id, page))
            ]

    def create_region(
        self,
        *,
        region_id: str | None = None,
        description: str = "",
        parent_region_id: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Create a region. :raises Conflict: the id is taken."""
        rid = region_id or new_id()

        def _create(session: Any) -> dict[str, Any]:
            if parent_region_id is not None:
                self._get_parent(session, parent_region_id)
            row = models.Region(
                id=rid,
                description=description,
                parent_region_id=parent_region_id,
                extra=extra or {},
            )
            session.add(row)
            session.flush()
            return _region_dict(row)

        return self._write(_create, "region", f"Duplicate ID, {rid}")

    def _get_parent(self, session: Any, parent_region_id: str) -> None:
        if session.get(models.Region, parent_region_id) is None:
            raise exception.ValidationError(
                field="parent_region_id", reason=f"region {parent_region_id} does not exist"
            )

    def update_region(self, region_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Change a region's description or parent.

        :raises ValidationError: the new parent is unknown or makes a cycle.
        """

        def _update(session: Any) -> dict[str, Any]:
            row = self._get(session, models.Region, "region", region_id)
            extra = dict(row.extra or {})
            for key, value in changes.items():
                if key == "parent_region_id":
                    if value is not None:
                        self._get_parent(session, value)
                        self._check_cycle(session, region_id, value)
                    row.parent_region_id = value
                elif key == "description":
                    row.description = value
                else:
                    extra[key] = value
            row.extra = extra
            session.flush()
            return _region_dict(row)

        return self._write(_update, "region", region_id)

    def _check_cycle(self, session: Any, region_id: str, parent_id: str) -> None:
        seen = set()
        current: str | None = parent_id
        while current is not None and current not in seen:
            if current == region_id:
                raise exception.ValidationError(
                    field="parent_region_id", reason="a region cannot be its own ancestor"
                )
            seen.add(current)
            row = session.get(models.Region, current)
            current = row.parent_region_id if row is not None else None

    def delete_region(self, region_id: str) -> None:
        """Delete a region. :raises Conflict: endpoints or child regions use it."""

        def _delete(session: Any) -> None:
            row = self._get(session, models.Region, "region", region_id)
            in_use = session.scalar(
                sa.select(sa.func.count())
                .select_from(models.Endpoint)
                .where(models.Endpoint.region_id == region_id)
            ) or session.scalar(
                sa.select(sa.func.count())
                .select_from(models.Region)
                .where(models.Region.parent_region_id == region_id)
            )
            if in_use:
                raise exception.Conflict(
                    kind="region", reason=f"region {region_id} still has endpoints or children"
                )
            session.delete(row)

        self._write(_delete, "region", region_id)

    # -- services ----------------------------------------------------------

    def get_service(self, service_id: str) -> dict[str, Any]:
        """Return one service. :raises NotFound: unknown id."""
        with self.db.reader() as session:
            return _service_dict(self._get(session, models.Service, "service", service_id))

    def list_services(
        self, *, type: str | None = None, name: str | None = None, page: Page = Page()
    ) -> list[dict[str, Any]]:
        """Return the services matching the filters."""
        stmt = filter_equal(sa.select(models.Service), models.Service, type=type, name=name)
        with self.db.reader() as session:
            return [
                _service_dict(r) for r in session.scalars(apply_page(stmt, models.Service.id, page))
            ]

    def create_service(
        self,
        *,
        type: str,
        name: str = "",
        description: str = "",
        enabled: bool = True,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Create a service entry."""
        row = models.Service(
            id=new_id(),
            type=type,
            name=name,
            description=description,
            enabled=enabled,
            extra=extra or {},
        )

        def _create(session: Any) -> dict[str, Any]:
            session.add(row)
            session.flush()
            return _service_dict(row)

        return self._write(_create, "service", row.id)

    def update_service(self, service_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Change a service's type, name, description, enabled flag or extra keys."""

        def _update(session: Any) -> dict[str, Any]:
            row = self._get(session, models.Service, "service", service_id)
            apply_changes(row, changes, ("type", "name", "description", "enabled"))
            session.flush()
            return _service_dict(row)

        return self._write(_update, "service", service_id)

    def delete_service(self, service_id: str) -> None:
        """Delete a service and its endpoints."""

        def _delete(session: Any) -> None:
            row = self._get(session, models.Service, "service", service_id)
            session.execute(
                sa.delete(models.Endpoint).where(models.Endpoint.service_id == service_id)
            )
            session.delete(row)

        self._write(_delete, "service", service_id)

    # -- endpoints ---------------------------------------------------------

    def get_endpoint(self, endpoint_id: str) -> dict[str, Any]:
        """Return one endpoint. :raises NotFound: unknown id."""
        with self.db.reader() as session:
            return _endpoint_dict(self._get(session, models.Endpoint, "endpoint", endpoint_id))

    def list_endpoints(
        self,
        *,
        service_id: str | None = None,
        interface: str | None = None,
        region_id: str | None = None,
        page: Page = Page(),
    ) -> list[dict[str, Any]]:
        """Return the endpoints matching the filters."""
        e = models.Endpoint
        stmt = filter_equal(
            sa.select(e), e, service_id=service_id, interface=interface, region_id=region_id
        )
        with self.db.reader() as session:
            return [_endpoint_dict(r) for r in session.scalars(apply_page(stmt, e.id, page))]

    def _check_refs(self, session: Any, service_id: str | None, region_id: str | None) -> None:
        if service_id is not None and session.get(models.Service, service_id) is None:
            raise exception.ValidationError(
                field="service_id", reason=f"service {service_id} does not exist"
            )
        if region_id is not None and session.get(models.Region, region_id) is None:
            raise exception.ValidationError(
                field="region_id", reason=f"region {region_id} does not exist"
            )

    def create_endpoint(
        self,
        *,
        service_id: str,
        interface: str,
        url: str,
        region_id: str | None = None,
        enabled: bool = True,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Create an endpoint of a service.

        :raises ValidationError: the service or region does not exist.
        """
        row = models.Endpoint(
            id=new_id(),
            service_id=service_id,
            interface=interface,
            url=url,
            region_id=region_id,
            enabled=enabled,
            extra=extra or {},
        )

        def _create(session: Any) -> dict[str, Any]:
            self._check_refs(session, service_id, region_id)
            session.add(row)
            session.flush()
            return _endpoint_dict(row)

        return self._write(_create, "endpoint", row.id)

    def update_endpoint(self, endpoint_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Change an endpoint's attributes."""

        def _update(session: Any) -> dict[str, Any]:
            row = self._get(session, models.Endpoint, "endpoint", endpoint_id)
            self._check_refs(session, changes.get("service_id"), changes.get("region_id"))
            apply_changes(row, changes, ("service_id", "interface", "url", "region_id", "enabled"))
            session.flush()
            return _endpoint_dict(row)

        return self._write(_update, "endpoint", endpoint_id)

    def delete_endpoint(self, endpoint_id: str) -> None:
        """Delete an endpoint."""

        def _delete(session: Any) -> None:
            session.delete(self._get(session, models.Endpoint, "endpoint", endpoint_id))

        self._write(_delete, "endpoint", endpoint_id)

    # -- the token catalog --------------------------------------------------

    def _raw_catalog(self) -> list[dict[str, Any]]:
        now = self.clock()
        with self._lock:
            if self._cached is not None and now - self._cached[0] < self.cache_time:
                return self._cached[1]
        with self.db.reader() as session:
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
            self._cached = (now, catalog)
        return catalog

    def catalog_for(self, *, user_id: str, project_id: str | None) -> list[dict[str, Any]]:
        """Return the catalog as a token shows it, URLs filled for the project.

        Endpoints whose URL needs a project id are left out of tokens that
        have none.
        """
        values = {"project_id": project_id, "tenant_id": project_id, "user_id": user_id}
        result = []
        for svc in self._raw_catalog():
            endpoints = []
            for ep in svc["endpoints"]:
                url = _substitute(ep["url"], values)
                if url is not None:
                    endpoints.append({**ep, "url": url})
            result.append({**svc, "endpoints": endpoints})
        return result
