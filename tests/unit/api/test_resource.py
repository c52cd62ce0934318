"""The resource kit (nimbus.api.resource) over a tiny in-memory manager."""

from __future__ import annotations

from typing import Any

import falcon
import falcon.testing
import pytest

from nimbus import exception
from nimbus.api import errors
from nimbus.api import resource as kit
from nimbus.api.app import Links


class FakeManager:
    """Things kept in a dict, listed by id; records what it was asked."""

    def __init__(self, count: int = 0) -> None:
        self.items = {f"id{i:02d}": {"id": f"id{i:02d}", "name": f"n{i}"} for i in range(count)}
        self.queries: list[kit.ListParams] = []

    def list(self, ctx: Any, query: kit.ListParams) -> list[dict[str, Any]]:
        self.queries.append(query)
        refs = sorted(self.items.values(), key=lambda r: r["id"])
        if query.marker:
            refs = [r for r in refs if r["id"] > query.marker]
        if "name" in query.filters:
            refs = [r for r in refs if r["name"] == query.filters["name"]]
        return refs[: query.limit] if query.limit else refs

    def create(self, ctx: Any, values: dict[str, Any]) -> dict[str, Any]:
        ref = {"id": f"new{len(self.items)}", **values}
        self.items[ref["id"]] = ref
        return ref

    def get(self, ctx: Any, item_id: str) -> dict[str, Any]:
        if item_id not in self.items:
            raise exception.NotFound(f"no thing {item_id}")
        return self.items[item_id]

    def delete(self, ctx: Any, item_id: str) -> None:
        del self.items[item_id]


class Things(kit.Collection):
    member_key, collection_key, collection = "thing", "things", "/v1/things"
    filters = {"name": str, "on": kit.bool_value}


class Thing(kit.Item):
    member_key, collection_key, collection = "thing", "things", "/v1/things"


class _Context:
    """Puts a stand-in request context and the parsed body where the kit looks."""

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.nimbus = "ctx"
        if req.content_length:
            req.context.json = req.get_media()


def _client(manager: FakeManager, pages: kit.PageFormat, *, update: bool = False) -> Any:
    crud = kit.Crud(
        list=manager.list,
        create=manager.create,
        get=manager.get,
        update=(lambda ctx, item_id, changes: {**manager.get(ctx, item_id), **changes})
        if update
        else None,
        delete=manager.delete,
    )
    app = falcon.App()
    app.add_middleware(_Context())
    links = Links(public_endpoint="http://api.test", mount="")
    things, thing = Things(crud, links), Thing(crud, links)
    things.pages = thing.pages = pages
    app.add_route("/v1/things", things)
    app.add_route("/v1/things/{thing_id}", thing)
    return falcon.testing.TestClient(app)


def test_keystone_page_has_self_and_next_links() -> None:
    manager = FakeManager(5)
    client = _client(manager, kit.KeystonePages(max_limit=100))
    body = client.simulate_get("/v1/things", params={"limit": "2"}).json
    assert [t["id"] for t in body["things"]] == ["id00", "id01"]
    assert body["links"]["self"] == "http://api.test/v1/things?limit=2"
    assert body["links"]["previous"] is None
    assert body["links"]["next"] == "http://api.test/v1/things?limit=2&marker=id01"
    assert manager.queries[-1] == kit.ListParams(limit=2, marker=None)


def test_last_page_has_no_next_link_and_marker_is_passed() -> None:
    manager = FakeManager(3)
    client = _client(manager, kit.KeystonePages(max_limit=100))
    body = client.simulate_get("/v1/things", params={"limit": "2", "marker": "id01"}).json
    assert [t["id"] for t in body["things"]] == ["id02"]
    assert body["links"]["next"] is None
    assert manager.queries[-1].marker == "id01"


def test_limit_is_capped_and_filters_are_parsed() -> None:
    manager = FakeManager(3)
    client = _client(manager, kit.KeystonePages(max_limit=2))
    client.simulate_get("/v1/things", params={"limit": "50", "name": "n1", "on": "off"})
    query = manager.queries[-1]
    assert query.limit == 2
    assert dict(query.filters) == {"name": "n1", "on": False}


def test_nova_and_glance_page_shapes() -> None:
    nova = _client(FakeManager(3), kit.NovaPages(max_limit=10))
    body = nova.simulate_get("/v1/things", params={"limit": "1"}).json
    assert body["things_links"] == [
        {"rel": "next", "href": "http://api.test/v1/things?limit=1&marker=id00"}
    ]
    glance = _client(FakeManager(3), kit.GlancePages(max_limit=10))
    body = glance.simulate_get("/v1/things", params={"limit": "1", "marker": "id00"}).json
    assert body["first"] == "/v1/things?limit=1"
    assert body["next"] == "/v1/things?limit=1&marker=id01"
    assert body["schema"] == "/v2/schemas/things"


def test_fields_select_attributes() -> None:
    client = _client(FakeManager(2), kit.PageFormat())
    body = client.simulate_get("/v1/things", params={"fields": "name"}).json
    assert body == {"things": [{"name": "n0"}, {"name": "n1"}]}
    assert kit.select_fields([{"a": 1, "b": 2}], None) == [{"a": 1, "b": 2}]


@pytest.mark.parametrize("limit", ["0", "-1", "x"])
def test_bad_limit_is_a_validation_error(limit: str) -> None:
    req = falcon.testing.create_req(query_string=f"limit={limit}")
    with pytest.raises(exception.ValidationError):
        kit.PageFormat(max_limit=5).limit(req)


def test_create_get_delete() -> None:
    manager = FakeManager()
    client = _client(manager, kit.KeystonePages())
    created = client.simulate_post("/v1/things", json={"thing": {"name": "a"}})
    assert created.status_code == 201
    assert created.json == {"thing": {"id": "new0", "name": "a"}}
    assert client.simulate_get("/v1/things/new0").json == {"thing": {"id": "new0", "name": "a"}}
    assert client.simulate_delete("/v1/things/new0").status_code == 204
    assert manager.items == {}


def test_missing_operation_is_405() -> None:
    client = _client(FakeManager(1), kit.PageFormat())
    result = client.simulate_patch("/v1/things/id00", json={"thing": {"name": "b"}})
    assert result.status_code == 405
    assert "PATCH" not in result.headers["allow"]
    patched = _client(FakeManager(1), kit.PageFormat(), update=True).simulate_patch(
        "/v1/things/id00", json={"thing": {"name": "b"}}
    )
    assert patched.json == {"thing": {"id": "id00", "name": "b"}}


def test_may_create_runs_before_the_body_is_read() -> None:
    calls: list[str] = []

    class Checked(Things):
        def create_values(self, req: falcon.Request) -> dict[str, Any]:
            calls.append("body")
            return super().create_values(req)

    def may_create(ctx: Any) -> None:
        calls.append(f"policy {ctx}")
        if len(calls) > 1:
            raise exception.Forbidden("no")

    manager = FakeManager()
    crud = kit.Crud(create=manager.create, may_create=may_create)
    app = falcon.App()
    app.add_middleware(_Context())
    errors.install(app, lambda path: errors.FORMATS["keystone"])
    app.add_route("/v1/things", Checked(crud, Links(public_endpoint="http://x", mount="")))
    client = falcon.testing.TestClient(app)

    assert client.simulate_post("/v1/things", json={"thing": {"name": "a"}}).status_code == 201
    assert calls == ["policy ctx", "body"]
    assert client.simulate_post("/v1/things", json={"thing": {"name": "b"}}).status_code == 403
    assert calls == ["policy ctx", "body", "policy ctx"]
    assert list(manager.items) == ["new0"]


class Memberships:
    """Pairs (member, team) in a set; ``check`` raises NotFound for a missing one."""

    def __init__(self) -> None:
        self.pairs: set[tuple[str, str]] = set()

    def add(self, ctx: Any, member: str, team: str) -> None:
        self.pairs.add((member, team))

    def check(self, ctx: Any, member: str, team: str) -> None:
        if (member, team) not in self.pairs:
            raise exception.NotFound(f"{member} is not in {team}")

    def remove(self, ctx: Any, member: str, team: str) -> None:
        self.check(ctx, member, team)
        self.pairs.discard((member, team))


class Membership(kit.Link):
    def calls(self) -> kit.LinkCalls:
        return self.service.add, self.service.check, self.service.remove

    def arguments(self, params: Any) -> tuple[Any, ...]:
        return params["member_id"], params["team_id"]


def test_link_makes_checks_and_ends_a_relation() -> None:
    memberships = Memberships()
    app = falcon.App()
    app.add_middleware(_ContextOnly())
    errors.install(app, lambda path: errors.FORMATS["keystone"])
    app.add_route(
        "/v1/teams/{team_id}/members/{member_id}",
        Membership(memberships, Links(public_endpoint="http://api.test", mount="")),
    )
    client = falcon.testing.TestClient(app)
    url = "/v1/teams/t1/members/m1"
    assert client.simulate_head(url).status_code == 404
    put = client.simulate_put(url)
    assert (put.status_code, put.content) == (204, b"")
    assert memberships.pairs == {("m1", "t1")}
    assert client.simulate_head(url).status_code == 204
    assert client.simulate_get(url).status_code == 204
    assert client.simulate_delete(url).status_code == 204
    assert memberships.pairs == set()
    assert client.simulate_get(url).status_code == 404
    assert client.simulate_post(url).status_code == 405


class _ContextOnly:
    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.nimbus = "ctx"
