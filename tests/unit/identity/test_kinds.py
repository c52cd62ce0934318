"""The CRUD path every declared identity kind shares, run kind by kind.

Domains, projects, roles, regions, services and endpoints go through
:class:`nimbus.db.repository.Kind`: each kind must check its own rules,
answer its own NotFound, keep unknown attributes as extra keys and page
by id.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from nimbus import exception
from nimbus.context import RequestContext
from nimbus.db.repository import Page
from nimbus.identity.service import IdentityService
from nimbus.policy import INTERNAL
from tests.unit.identity.conftest import Callers


@dataclasses.dataclass(frozen=True)
class KindCase:
    """How the tests reach one kind through its manager."""

    noun: str
    manager: str
    #: the create argument that tells items apart.
    field: str
    #: a change the kind accepts as a column.
    change: dict[str, Any] = dataclasses.field(default_factory=lambda: {"description": "new"})
    #: further create arguments, made fresh for each item.
    needs: Callable[[IdentityService], dict[str, Any]] = lambda service: {}
    #: the manager's create takes the values as one mapping (roles).
    create_takes_values: bool = False
    #: makes an item deletable (domains must be disabled first).
    before_delete: Callable[[IdentityService, str], None] = lambda service, item_id: None

    def call(self, service: IdentityService, verb: str, *args: Any, **kwargs: Any) -> Any:
        manager = getattr(service, self.manager)
        kind = getattr(manager, f"{self.noun}s")
        # Reads go through the kind.
        if verb in ("get", "list"):
            return getattr(kind, verb)(*args, **kwargs)
        if verb == "create" and self.create_takes_values:
            return getattr(manager, f"create_{self.noun}")(*args, kwargs)
        return getattr(manager, f"{verb}_{self.noun}")(*args, **kwargs)

    def create(self, service: IdentityService, ctx: RequestContext, suffix: str) -> Any:
        values = {self.field: f"{self.noun}-{suffix}", **self.needs(service)}
        return self.call(service, "create", ctx, **values)


def _service_ref(service: IdentityService) -> dict[str, Any]:
    svc = service.catalog.create_service(INTERNAL, type="for-endpoints")
    return {"service_id": svc["id"], "interface": "public"}


def _disable_domain(service: IdentityService, domain_id: str) -> None:
    service.resources.update_domain(INTERNAL, domain_id, {"enabled": False})


KINDS = [
    KindCase("domain", "resources", "name", before_delete=_disable_domain),
    KindCase("project", "resources", "name"),
    KindCase("role", "assignments", "name", create_takes_values=True),
    KindCase("region", "catalog", "region_id"),
    KindCase("service", "catalog", "type"),
    KindCase("endpoint", "catalog", "url", change={"url": "http://new/"}, needs=_service_ref),
]


@pytest.fixture(params=KINDS, ids=[k.noun for k in KINDS])
def kind(request: pytest.FixtureRequest) -> KindCase:
    return request.param


def test_writes_need_the_kinds_own_rules(
    service: IdentityService, callers: Callers, kind: KindCase
) -> None:
    item = kind.create(service, callers.admin, "a")
    with pytest.raises(exception.PolicyNotAuthorized, match=f"identity:create_{kind.noun}"):
        kind.create(service, callers.reader, "b")
    with pytest.raises(exception.Forbidden, match=f"identity:update_{kind.noun}"):
        kind.call(service, "update", callers.reader, item["id"], kind.change)
    with pytest.raises(exception.Forbidden, match=f"identity:delete_{kind.noun}"):
        kind.call(service, "delete", callers.reader, item["id"])
    assert kind.call(service, "get", callers.reader, item["id"]) == item


def test_unknown_ids_are_the_kinds_not_found(
    service: IdentityService, callers: Callers, kind: KindCase
) -> None:
    message = f"Could not find {kind.noun}: nope."
    with pytest.raises(exception.NotFound, match=message):
        kind.call(service, "get", callers.admin, "nope")
    with pytest.raises(exception.NotFound, match=message):
        kind.call(service, "update", callers.admin, "nope", kind.change)
    with pytest.raises(exception.NotFound, match=message):
        kind.call(service, "delete", callers.admin, "nope")


def test_update_sets_columns_and_keeps_other_keys(
    service: IdentityService, callers: Callers, kind: KindCase
) -> None:
    item = kind.create(service, callers.admin, "a")
    changes = {**kind.change, "colour": "blue"}
    updated = kind.call(service, "update", callers.admin, item["id"], changes)
    assert {k: updated[k] for k in changes} == changes
    assert kind.call(service, "get", callers.admin, item["id"]) == updated
    again = kind.call(service, "update", callers.admin, item["id"], {"size": 3})
    assert (again["colour"], again["size"]) == ("blue", 3)


def test_delete_then_gone(service: IdentityService, callers: Callers, kind: KindCase) -> None:
    item = kind.create(service, callers.admin, "a")
    kind.before_delete(service, item["id"])
    kind.call(service, "delete", callers.admin, item["id"])
    with pytest.raises(exception.NotFound):
        kind.call(service, "get", callers.admin, item["id"])
    assert item["id"] not in [i["id"] for i in kind.call(service, "list", callers.admin)]


def test_lists_page_by_id(service: IdentityService, callers: Callers, kind: KindCase) -> None:
    for suffix in ("a", "b", "c"):
        kind.create(service, callers.admin, suffix)
    every = [i["id"] for i in kind.call(service, "list", callers.admin)]
    assert every == sorted(every) and len(every) >= 3
    first = kind.call(service, "list", callers.admin, page=Page(limit=2))
    assert [i["id"] for i in first] == every[:2]
    rest = kind.call(service, "list", callers.admin, page=Page(marker=first[-1]["id"]))
    assert [i["id"] for i in rest] == every[2:]


def test_duplicate_names_conflict(service: IdentityService, callers: Callers) -> None:
    service.assignments.roles.create(callers.admin, {"name": "twice"})
    with pytest.raises(exception.Conflict, match="Duplicate entry found with name twice"):
        service.assignments.roles.create(callers.admin, {"name": "twice"})
    other = service.assignments.roles.create(callers.admin, {"name": "other"})
    with pytest.raises(exception.Conflict, match="Duplicate entry found with name twice"):
        service.assignments.update_role(callers.admin, other["id"], {"name": "twice"})
    service.resources.create_domain(callers.admin, name="twice")
    with pytest.raises(exception.Conflict, match="Duplicate entry found with name twice"):
        service.resources.create_domain(callers.admin, name="twice")
    with pytest.raises(exception.Conflict, match="Duplicate ID, RegionOne"):
        service.catalog.create_region(callers.admin, region_id="RegionOne")


def test_list_filters(service: IdentityService, callers: Callers) -> None:
    a = service.catalog.create_service(callers.admin, type="compute", name="a")
    service.catalog.create_service(callers.admin, type="image", name="b")
    assert [
        s["id"] for s in service.catalog.services.list(callers.admin, filters={"type": "compute"})
    ] == [a["id"]]
    assert (
        service.catalog.services.list(callers.admin, filters={"type": "compute", "name": "b"}) == []
    )
    service.resources.create_domain(callers.admin, name="off", enabled=False)
    assert [
        d["name"] for d in service.resources.domains.list(callers.admin, filters={"enabled": False})
    ] == ["off"]


def test_unmatched_filters_list_nothing_but_still_check_policy(
    service: IdentityService, callers: Callers
) -> None:
    role = service.assignments.roles.create(callers.admin, {"name": "plain"})
    assert role in service.assignments.roles.list(callers.admin, filters={"domain_id": None})
    assert service.assignments.roles.list(callers.admin, filters={"domain_id": "any"}) == []
    assert service.resources.list_projects(callers.admin)
    # The projects acting as domains are the domains.
    as_domains = service.resources.list_projects(callers.admin, is_domain=True)
    assert {p["id"] for p in as_domains} == {"default", callers.other_domain_id}
    assert service.resources.list_projects(callers.admin, is_domain=False)
    with pytest.raises(exception.PolicyNotAuthorized):
        service.resources.list_projects(callers.member, is_domain=True)


def test_role_and_catalog_writes_drop_their_caches(
    service: IdentityService, callers: Callers
) -> None:
    forgotten: list[int] = []
    service.auth.forget_cached = lambda: forgotten.append(1)  # type: ignore[method-assign]
    role = service.assignments.roles.create(callers.admin, {"name": "cached"})
    service.assignments.update_role(callers.admin, role["id"], {"description": "d"})
    assert forgotten
    svc = service.catalog.create_service(callers.admin, type="compute")
    assert service.catalog.catalog_for(user_id="u", project_id="p")[0]["id"] == svc["id"]
    service.catalog.delete_service(callers.admin, svc["id"])
    assert service.catalog.catalog_for(user_id="u", project_id="p") == []
