"""The identity API's errors and the happy paths the ``openstack`` client relies on.

Every error must be a 4xx in Keystone's shape, ``{"error": {"code", "title",
"message"}}`` as ``application/json`` with an ``x-openstack-request-id``
header, because keystoneauth reads nothing else (client contract, section 4).
The whole app runs in-process on SQLite (see ``conftest.py``).
"""

from __future__ import annotations

import collections
import datetime
import io
import re
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import falcon.testing
import pytest
from cryptography.fernet import Fernet, MultiFernet
from oslo_config import cfg

import nimbus.wsgi
from nimbus.api.app import Links
from nimbus.api.identity import routes
from nimbus.identity.token.formatter import TokenFormatter, TokenPayload, new_audit_id

if TYPE_CHECKING:
    from tests.functional.api.conftest import Identity, Member

LINK_ROOT = "http://falconframework.org/identity"
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def _challenge(identity: Identity) -> str:
    return f'Keystone uri="{nimbus.wsgi.public_url(identity.conf)}/identity/v3"'


def _assert_unauthorized(identity: Identity, result: falcon.testing.Result) -> None:
    identity.assert_error(result, 401)
    assert result.headers["www-authenticate"] == _challenge(identity)


def _new_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def member(make_member: Callable[..., Member]) -> Member:
    return make_member()


# == Request bodies ==========================================================

#: Routes that take a body, with a valid one (as admin unless noted).
BODY_ROUTES = [
    ("POST", "/users", "user"),
    ("POST", "/projects", "project"),
    ("POST", "/domains", "domain"),
    ("POST", "/roles", "role"),
    ("POST", "/groups", "group"),
    ("POST", "/services", "service"),
    ("POST", "/regions", "region"),
    ("POST", "/auth/tokens", "auth"),
]


@pytest.mark.parametrize(
    "raw",
    [
        b"{",
        b'{"project": }',
        b"{'project': {'name': 'p'}}",
        b'{"project": {"name": "p"}} trailing',
        b'{"project": {"name": "p",}}',
        b"\xff\xfe\x00garbage",
        b'{"project": {"name": "\xc3\x28"}}',
    ],
    ids=["open-brace", "no-value", "single-quotes", "trailing", "trailing-comma", "binary", "utf8"],
)
def test_malformed_json_is_a_bad_request(identity: Identity, raw: bytes) -> None:
    result = identity.request("POST", "/projects", raw=raw)

    message = identity.assert_error(result, 400)
    assert "JSON" in message


@pytest.mark.parametrize(("method", "path", "key"), BODY_ROUTES)
def test_malformed_json_on_every_create_route(
    identity: Identity, method: str, path: str, key: str
) -> None:
    token = None if path == "/auth/tokens" else identity.admin_token
    result = identity.request(method, path, raw=b'{"%s": {' % key.encode(), token=token)

    identity.assert_error(result, 400)


@pytest.mark.parametrize("depth", [1_000, 50_000])
def test_deeply_nested_json_is_a_bad_request(identity: Identity, depth: int) -> None:
    raw = b"[" * depth + b"]" * depth

    # No token: the body is parsed before authentication, on any route.
    result = identity.request("POST", "/projects", raw=raw, token=None)

    identity.assert_error(result, 400)


@pytest.mark.parametrize("path", ["/projects", "/auth/tokens"])
def test_an_integer_too_long_to_convert_is_a_bad_request(identity: Identity, path: str) -> None:
    raw = b'{"project": {"name": "p", "size": ' + b"7" * 5000 + b"}}"

    result = identity.request("POST", path, raw=raw, token=None)

    identity.assert_error(result, 400)


@pytest.mark.parametrize("number", [b"1e999", b"-1e999", b"NaN", b"Infinity", b"-Infinity"])
def test_a_number_json_cannot_carry_is_refused(identity: Identity, number: bytes) -> None:
    """1e999 parses to infinity, which would be stored and then served as invalid JSON."""
    raw = b'{"project": {"name": "big", "size": ' + number + b"}}"

    result = identity.request("POST", "/projects", raw=raw)

    assert "not a JSON number" in identity.assert_error(result, 400)
    listed = identity.request("GET", "/projects?name=big").json["projects"]
    assert listed == []


@pytest.mark.parametrize(
    "document",
    [[], [{"project": {"name": "p"}}], "project", 42, 4.5, True, None],
    ids=["empty-list", "list", "string", "int", "float", "bool", "null"],
)
def test_a_body_that_is_not_an_object_is_refused(identity: Identity, document: Any) -> None:
    result = identity.request("POST", "/projects", document)

    identity.assert_error(result, 400)


@pytest.mark.parametrize(("method", "path", "key"), BODY_ROUTES)
def test_the_resource_key_must_hold_an_object(
    identity: Identity, method: str, path: str, key: str
) -> None:
    token = None if path == "/auth/tokens" else identity.admin_token
    for inner in ([], [{"name": "x"}], "p", 1, 2.5, None, True):
        result = identity.request(method, path, {key: inner}, token=token)

        message = identity.assert_error(result, 400)
        assert key in message, inner


def test_an_empty_body_is_a_missing_resource(identity: Identity) -> None:
    result = identity.request("POST", "/projects", raw=b"")

    message = identity.assert_error(result, 400)
    assert "project" in message


MISSING = [
    ("POST", "/users", {"user": {"password": "pw"}}, "name"),
    ("POST", "/users", {"usr": {"name": "u"}}, "user"),
    ("POST", "/projects", {"project": {"description": "d"}}, "name"),
    ("POST", "/domains", {"domain": {}}, "name"),
    ("POST", "/roles", {"role": {"description": "d"}}, "name"),
    ("POST", "/groups", {"group": {}}, "name"),
    ("POST", "/services", {"service": {"name": "s"}}, "type"),
    ("POST", "/endpoints", {"endpoint": {"url": "http://h/"}}, "service_id"),
    ("POST", "/auth/tokens", {"auth": {}}, "identity"),
    ("POST", "/auth/tokens", {"auth": {"identity": {}}}, "methods"),
    ("POST", "/auth/tokens", {"auth": {"identity": {"methods": ["password"]}}}, "password"),
    ("POST", "/auth/tokens", {"auth": {"identity": {"methods": ["token"]}}}, "token"),
    (
        "POST",
        "/auth/tokens",
        {"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "admin"}}}}},
        "password",
    ),
    (
        "POST",
        "/auth/tokens",
        {"auth": {"identity": {"methods": ["token"], "token": {}}}},
        "id",
    ),
]


@pytest.mark.parametrize(("method", "path", "body", "field"), MISSING)
def test_missing_required_fields(
    identity: Identity, method: str, path: str, body: Any, field: str
) -> None:
    token = None if path == "/auth/tokens" else identity.admin_token
    result = identity.request(method, path, body, token=token)

    message = identity.assert_error(result, 400)
    assert field in message


def test_an_empty_update_is_refused(identity: Identity, member: Member) -> None:
    result = identity.request("PATCH", f"/users/{member.user['id']}", {"user": {}})

    identity.assert_error(result, 400)


def test_a_password_change_needs_the_original_password(identity: Identity, member: Member) -> None:
    result = identity.request(
        "POST",
        f"/users/{member.user['id']}/password",
        {"user": {"password": "new-secret"}},
        token=member.token,
    )

    message = identity.assert_error(result, 400)
    assert "original_password" in message


WRONG_TYPES = [
    ("POST", "/users", {"user": {"name": 42}}, "name"),
    ("POST", "/users", {"user": {"name": "u", "enabled": "true"}}, "enabled"),
    ("POST", "/users", {"user": {"name": "u", "password": 1234}}, "password"),
    ("POST", "/users", {"user": {"name": "u", "domain_id": ["default"]}}, "domain_id"),
    ("POST", "/users", {"user": {"name": "u", "email": {"a": 1}}}, "email"),
    ("POST", "/projects", {"project": {"name": 3.5}}, "name"),
    ("POST", "/projects", {"project": {"name": "p", "enabled": 1}}, "enabled"),
    ("POST", "/projects", {"project": {"name": "p", "description": 7}}, "description"),
    ("POST", "/projects", {"project": {"name": "p", "parent_id": 12}}, "parent_id"),
    ("POST", "/projects", {"project": {"name": "p", "tags": "a,b"}}, "tags"),
    ("POST", "/projects", {"project": {"name": "p", "is_domain": "true"}}, "is_domain"),
    ("POST", "/domains", {"domain": {"name": ["d"]}}, "name"),
    ("POST", "/domains", {"domain": {"name": "d", "enabled": "yes"}}, "enabled"),
    ("POST", "/roles", {"role": {"name": {"n": 1}}}, "name"),
    ("POST", "/groups", {"group": {"name": False}}, "name"),
    ("POST", "/services", {"service": {"type": 1}}, "type"),
    ("POST", "/regions", {"region": {"description": []}}, "description"),
    ("POST", "/auth/tokens", {"auth": {"identity": {"methods": "password"}}}, "methods"),
    ("POST", "/auth/tokens", {"auth": {"identity": {"methods": [1]}}}, "methods"),
    ("POST", "/auth/tokens", {"auth": {"identity": {"methods": []}}}, "methods"),
    (
        "POST",
        "/auth/tokens",
        {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {"user": {"id": 5, "password": "x"}},
                }
            }
        },
        "id",
    ),
    ("POST", "/auth/tokens", {"auth": {"identity": {"methods": ["x"]}, "scope": 3}}, "scope"),
]


@pytest.mark.parametrize(("method", "path", "body", "field"), WRONG_TYPES)
def test_wrong_types_are_refused(
    identity: Identity, method: str, path: str, body: Any, field: str
) -> None:
    token = None if path == "/auth/tokens" else identity.admin_token
    result = identity.request(method, path, body, token=token)

    message = identity.assert_error(result, 400)
    assert field in message


NULLS = [
    ("POST", "/users", {"user": {"name": None}}, "name"),
    ("POST", "/users", {"user": {"name": "u", "enabled": None}}, "enabled"),
    ("POST", "/projects", {"project": {"name": None}}, "name"),
    ("POST", "/projects", {"project": {"name": "p", "enabled": None}}, "enabled"),
    ("POST", "/domains", {"domain": {"name": None}}, "name"),
    ("POST", "/roles", {"role": {"name": None}}, "name"),
    ("POST", "/groups", {"group": {"name": None}}, "name"),
    ("POST", "/services", {"service": {"type": None}}, "type"),
    (
        "POST",
        "/endpoints",
        {"endpoint": {"service_id": None, "interface": "public", "url": "http://h/"}},
        "service_id",
    ),
    ("POST", "/auth/tokens", {"auth": None}, "auth"),
    ("POST", "/auth/tokens", {"auth": {"identity": None}}, "identity"),
    ("POST", "/auth/tokens", {"auth": {"identity": {"methods": None}}}, "methods"),
    (
        "POST",
        "/auth/tokens",
        {"auth": {"identity": {"methods": ["password"], "password": None}}},
        "password",
    ),
]


@pytest.mark.parametrize(("method", "path", "body", "field"), NULLS)
def test_null_where_a_value_is_required(
    identity: Identity, method: str, path: str, body: Any, field: str
) -> None:
    token = None if path == "/auth/tokens" else identity.admin_token
    result = identity.request(method, path, body, token=token)

    message = identity.assert_error(result, 400)
    assert field in message


@pytest.mark.parametrize(
    ("key", "field", "value"),
    [
        ("project", "name", "p" * 65),
        ("user", "name", "u" * 256),
        ("role", "name", " "),
        ("domain", "name", ""),
        ("project", "description", "d" * 65536),
    ],
    ids=["project-name", "user-name", "blank-role", "empty-domain", "description"],
)
def test_out_of_range_values_are_refused(
    identity: Identity, key: str, field: str, value: str
) -> None:
    body = {key: {"name": "ok", field: value}}

    result = identity.request("POST", f"/{key}s", body)

    message = identity.assert_error(result, 400)
    assert field in message


def test_a_name_already_taken_is_a_conflict(identity: Identity) -> None:
    identity.created("/projects", "project", {"name": "twin"})

    result = identity.request("POST", "/projects", {"project": {"name": "twin"}})

    identity.assert_error(result, 409)


# == Body size ===============================================================


class _CountingStream(io.BytesIO):
    """A request body that remembers how many bytes the server read."""

    consumed = 0

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        self.consumed += len(data)
        return data

    def readline(self, size: int | None = -1) -> bytes:
        data = super().readline(size)
        self.consumed += len(data)
        return data


def _huge_post(
    client: falcon.testing.TestClient, token: str, size: int, *, declared: int | None = None
) -> tuple[falcon.testing.Result, _CountingStream]:
    """POST a project whose body is *size* bytes; *declared* is the Content-Length sent."""
    prefix = b'{"project": {"name": "p", "description": "'
    data = prefix + b"x" * (size - len(prefix) - 4) + b'"}}\n'
    stream = _CountingStream(data)
    result = client.simulate_post(
        "/identity/v3/projects",
        headers={
            "X-Auth-Token": token,
            "Content-Type": "application/json",
            "Content-Length": str(len(data) if declared is None else declared),
        },
        extras={"wsgi.input": stream},
    )
    return result, stream


def test_a_ten_megabyte_body_is_refused_unread(identity: Identity) -> None:
    limit = identity.conf.api.max_request_body_size

    result, stream = _huge_post(identity.client, identity.admin_token, 10 * 1024 * 1024)

    message = identity.assert_error(result, 413)
    assert str(limit) in message
    assert stream.consumed == 0


def test_a_body_longer_than_declared_is_read_only_to_the_limit(identity: Identity) -> None:
    """A client lying about its length makes the server read at most limit + 1 bytes."""
    limit = identity.conf.api.max_request_body_size

    result, stream = _huge_post(
        identity.client, identity.admin_token, 10 * 1024 * 1024, declared=limit + 10
    )

    identity.assert_error(result, 413)
    assert stream.consumed <= limit + 1


def test_the_body_limit_comes_from_the_config(identity: Identity, services) -> None:
    identity.conf.set_override("max_request_body_size", 2048, group="api")
    client = falcon.testing.TestClient(nimbus.wsgi.build_app(services))

    over, _ = _huge_post(client, identity.admin_token, 2049)
    at_limit, _ = _huge_post(client, identity.admin_token, 2048)

    message = identity.assert_error(over, 413)
    assert "2048" in message
    assert at_limit.status_code == 201, at_limit.text


# == Unknown ids =============================================================


@pytest.fixture
def real_ids(identity: Identity, member: Member) -> dict[str, str]:
    """An existing resource for every kind of path parameter."""
    domain = identity.created("/domains", "domain", {"name": _new_name("dom")})
    group = identity.created("/groups", "group", {"name": _new_name("grp")})
    role = identity.created("/roles", "role", {"name": _new_name("role")})
    implied = identity.created("/roles", "role", {"name": _new_name("implied")})
    service = identity.created("/services", "service", {"type": "compute", "name": "nova"})
    endpoint = identity.created(
        "/endpoints",
        "endpoint",
        {"service_id": service["id"], "interface": "public", "url": "http://h:8774/"},
    )
    region = identity.created("/regions", "region", {"id": _new_name("region")})
    assert identity.request("PUT", f"/projects/{member.project['id']}/tags/t1").status_code == 201
    return {
        "tag": "t1",
        "project_id": member.project["id"],
        "domain_id": domain["id"],
        "user_id": member.user["id"],
        "group_id": group["id"],
        "role_id": role["id"],
        "implied_role_id": implied["id"],
        "service_id": service["id"],
        "endpoint_id": endpoint["id"],
        "region_id": region["id"],
    }


def _route_table(services) -> list[tuple[str, tuple[str, ...]]]:
    table = routes.routes(services.identity, services.enforcer, Links(None, "/identity"))
    return [
        (template, tuple(m for m in HTTP_METHODS if hasattr(resource, f"on_{m.lower()}")))
        for template, resource in table
    ]


def _item_requests(services) -> list[tuple[str, str]]:
    """Return (method, template) of every item route, as it is meant to be used."""
    found = []
    for template, methods in _route_table(services):
        if "{" not in template:
            continue
        for method in methods:
            if method == "POST":
                continue  # the password change: it checks its body before the user
            if template == "/v3/regions/{region_id}" and method == "PUT":
                continue  # creates the region named in the URL
            if template.startswith("/v3/projects/{project_id}/tags") and method == "PUT":
                continue  # adds the tag named in the URL; the list needs a body
            found.append((method, template))
    return found


def test_every_item_route_answers_404_for_each_unknown_id(
    identity: Identity, services, real_ids: dict[str, str]
) -> None:
    requests = _item_requests(services)
    assert len(requests) > 40
    wrong = []
    for method, template in requests:
        names = re.findall(r"{(\w+)}", template)
        for unknown in names:
            ids = {**real_ids, unknown: uuid.uuid4().hex}
            path = template.format(**ids)[len("/v3") :]
            body: Any = None
            if method == "PATCH":
                key = template.split("/")[2][:-1]  # /v3/users/{user_id} -> user
                body = {key: {"description": "changed"}}
            result = identity.request(method, path, body)
            try:
                identity.assert_error(result, 404, has_body=method != "HEAD")
            except AssertionError as ex:
                wrong.append(f"{method} {template} with unknown {unknown}: {ex}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("method", ["PUT", "HEAD", "DELETE", "PATCH", "POST"])
@pytest.mark.parametrize(
    "listing",
    [
        "/projects/{project_id}/users/{user_id}/roles",
        "/domains/default/users/{user_id}/roles",
        "/OS-INHERIT/domains/default/users/{user_id}/roles/inherited_to_projects",
    ],
)
def test_grant_listings_refuse_writes(
    identity: Identity, member: Member, listing: str, method: str
) -> None:
    path = listing.format(project_id=member.project["id"], user_id=member.user["id"])

    result = identity.request(method, path)

    identity.assert_error(result, 405, has_body=method != "HEAD")


def test_an_unknown_path_is_a_keystone_404(identity: Identity) -> None:
    identity.assert_error(identity.request("GET", "/no/such/thing"), 404)
    identity.assert_error(identity.request("GET", "/no/such/thing", token=None), 404)


# == Tokens ==================================================================


def _flip(token: str, index: int) -> str:
    char = token[index]
    return token[:index] + ("B" if char == "A" else "A") + token[index + 1 :]


@pytest.mark.parametrize(
    "spoil",
    [
        pytest.param(lambda t: _flip(t, len(t) // 2), id="flipped-middle"),
        pytest.param(lambda t: _flip(t, 10), id="flipped-header"),
        pytest.param(lambda t: t[::-1], id="reversed"),
        pytest.param(lambda t: t[:-8], id="truncated"),
        pytest.param(lambda t: t[:20], id="truncated-short"),
        pytest.param(lambda t: t + "AAAA", id="extended"),
        pytest.param(lambda t: "garbage", id="garbage"),
        pytest.param(lambda t: "gAAAAA" + "=" * 10, id="padding"),
        pytest.param(lambda t: "x" * 10_000, id="very-long"),
        pytest.param(lambda t: "t\xe9l\xe9", id="latin-1"),
        pytest.param(lambda t: t.upper(), id="upper-case"),
    ],
)
def test_a_spoiled_token_is_unauthorized(identity: Identity, spoil: Callable[[str], str]) -> None:
    result = identity.request("GET", "/users", token=spoil(identity.admin_token))

    _assert_unauthorized(identity, result)


@pytest.mark.parametrize("token", [None, ""], ids=["absent", "empty"])
def test_a_missing_token_is_unauthorized(identity: Identity, token: str | None) -> None:
    headers = {} if token is None else {"X-Auth-Token": token}

    result = identity.request("GET", "/projects", token=None, headers=headers)

    _assert_unauthorized(identity, result)


class _ForeignKeys:
    """Keys that are not in the repository."""

    def crypter(self) -> MultiFernet:
        return MultiFernet([Fernet(Fernet.generate_key())])


def _forge(identity: Identity, keys: Any) -> str:
    now = datetime.datetime.now(datetime.UTC)
    payload = TokenPayload(
        user_id=identity.admin_user["id"],
        methods=("password",),
        issued_at=now,
        expires_at=now + datetime.timedelta(hours=1),
        audit_ids=(new_audit_id(),),
        project_id=identity.admin_project["id"],
    )
    return TokenFormatter(keys).encode(payload)


def test_a_token_made_with_a_foreign_key_is_unauthorized(identity: Identity, services) -> None:
    # The same payload under the repository's own keys is accepted.
    assert identity.works(_forge(identity, services.identity.keys))

    result = identity.request("GET", "/users", token=_forge(identity, _ForeignKeys()))

    _assert_unauthorized(identity, result)


class _Clock:
    def __init__(self) -> None:
        self.now = datetime.datetime.now(datetime.UTC)

    def __call__(self) -> datetime.datetime:
        return self.now


def test_an_expired_token_is_unauthorized(
    identity: Identity, services, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = _Clock()
    monkeypatch.setattr(services.identity.auth, "now", clock)
    identity.conf.set_override("expiration", 5, group="token")
    token = identity.issue("admin", "secret", project="admin")
    assert identity.works(token)

    clock.now += datetime.timedelta(seconds=6)

    _assert_unauthorized(identity, identity.request("GET", "/users", token=token))
    # A service may still look at it within the allow_expired window.
    checked = identity.request(
        "GET", "/auth/tokens", headers={"X-Subject-Token": token}, params={"allow_expired": "1"}
    )
    assert checked.status_code == 200, checked.text
    identity.assert_error(
        identity.request("GET", "/auth/tokens", headers={"X-Subject-Token": token}), 404
    )


def test_a_revoked_token_is_unauthorized(identity: Identity, member: Member) -> None:
    revoked = identity.request("DELETE", "/auth/tokens", headers={"X-Subject-Token": member.token})
    assert revoked.status_code == 204, revoked.text

    _assert_unauthorized(identity, identity.request("GET", "/auth/projects", token=member.token))
    identity.assert_error(
        identity.request("GET", "/auth/tokens", headers={"X-Subject-Token": member.token}), 404
    )


def test_a_wrong_password_is_unauthorized(identity: Identity) -> None:
    result = identity.authenticate(identity.password_auth("admin", "wrong"))

    _assert_unauthorized(identity, result)


def test_an_unknown_user_is_unauthorized(identity: Identity) -> None:
    result = identity.authenticate(identity.password_auth("nobody", "secret"))

    _assert_unauthorized(identity, result)


def test_scoping_to_a_project_without_a_role_is_unauthorized(
    identity: Identity, member: Member
) -> None:
    auth = identity.password_auth(member.user["name"], member.password, project="admin")

    _assert_unauthorized(identity, identity.authenticate(auth))


def test_a_subject_token_is_required_to_validate(identity: Identity) -> None:
    message = identity.assert_error(identity.request("GET", "/auth/tokens"), 400)

    assert "X-Subject-Token" in message


# == Policy ==================================================================


def _snapshot(identity: Identity) -> dict[str, Any]:
    paths = [
        "/users",
        "/projects",
        "/domains",
        "/roles",
        "/groups",
        "/role_inferences",
        "/role_assignments",
        "/services",
        "/endpoints",
        "/regions",
    ]
    return {path: identity.request("GET", path).json for path in paths}


def _admin_only_calls(identity: Identity, member: Member, extra: dict[str, str]):
    admin_id = identity.admin_user["id"]
    own = member.project["id"]
    me = member.user["id"]
    admin_role = identity.role("admin")["id"]
    member_role = identity.role("member")["id"]
    return [
        ("GET", "/users", None, "list_users"),
        ("GET", f"/users/{admin_id}", None, "get_user"),
        ("POST", "/users", {"user": {"name": "intruder"}}, "create_user"),
        ("PATCH", f"/users/{admin_id}", {"user": {"enabled": False}}, "update_user"),
        ("PATCH", f"/users/{me}", {"user": {"name": "renamed"}}, "update_user"),
        ("DELETE", f"/users/{admin_id}", None, "delete_user"),
        ("GET", f"/users/{admin_id}/projects", None, "list_user_projects"),
        ("GET", "/projects", None, "list_projects"),
        ("POST", "/projects", {"project": {"name": "intruder"}}, "create_project"),
        ("PATCH", f"/projects/{own}", {"project": {"enabled": False}}, "update_project"),
        ("DELETE", f"/projects/{own}", None, "delete_project"),
        ("GET", f"/projects/{identity.admin_project['id']}", None, "get_project"),
        ("POST", "/domains", {"domain": {"name": "intruder"}}, "create_domain"),
        ("PATCH", "/domains/default", {"domain": {"enabled": False}}, "update_domain"),
        ("DELETE", "/domains/default", None, "delete_domain"),
        ("POST", "/roles", {"role": {"name": "intruder"}}, "create_role"),
        ("PATCH", f"/roles/{admin_role}", {"role": {"name": "x"}}, "update_role"),
        ("DELETE", f"/roles/{admin_role}", None, "delete_role"),
        ("PUT", f"/roles/{member_role}/implies/{admin_role}", None, "create_implied_role"),
        ("PUT", f"/projects/{own}/users/{me}/roles/{admin_role}", None, "create_grant"),
        (
            "PUT",
            f"/projects/{identity.admin_project['id']}/users/{me}/roles/{member_role}",
            None,
            "create_grant",
        ),
        ("DELETE", f"/projects/{own}/users/{me}/roles/{member_role}", None, "revoke_grant"),
        (
            "PUT",
            f"/OS-INHERIT/domains/default/users/{me}/roles/{admin_role}/inherited_to_projects",
            None,
            "create_grant",
        ),
        ("POST", "/groups", {"group": {"name": "intruder"}}, "create_group"),
        ("PUT", f"/groups/{extra['group_id']}/users/{me}", None, "add_user_to_group"),
        ("DELETE", f"/groups/{extra['group_id']}", None, "delete_group"),
        ("GET", "/role_assignments", None, "list_role_assignments"),
        ("POST", "/services", {"service": {"type": "evil"}}, "create_service"),
        ("DELETE", f"/services/{extra['service_id']}", None, "delete_service"),
        ("POST", "/regions", {"region": {"id": "evil"}}, "create_region"),
        ("PUT", "/regions/evil", {"region": {}}, "create_region"),
        ("PUT", f"/system/users/{me}/roles/{admin_role}", None, "create_system_grant_for_user"),
        ("GET", f"/system/users/{admin_id}/roles", None, "list_system_grants_for_user"),
        (
            "DELETE",
            f"/system/users/{admin_id}/roles/{admin_role}",
            None,
            "revoke_system_grant_for_user",
        ),
    ]


@pytest.mark.parametrize("role", ["member", "admin"])
def test_a_member_cannot_call_admin_routes(
    identity: Identity, make_member: Callable[..., Member], role: str, conf: cfg.ConfigOpts
) -> None:
    """Neither a member nor, with ``admin_project_only``, the admin role on another project.

    (By default the admin role on any project is the cloud's, as in Keystone:
    see test_system_scope.)
    """
    conf.set_override("admin_project_only", role == "admin", group="identity")
    member = make_member(role)
    group = identity.created("/groups", "group", {"name": "admins"})
    service = identity.created("/services", "service", {"type": "compute"})
    extra = {"group_id": group["id"], "service_id": service["id"]}
    calls = _admin_only_calls(identity, member, extra)
    before = _snapshot(identity)

    wrong = []
    for method, path, body, rule in calls:
        result = identity.request(method, path, body, token=member.token)
        try:
            message = identity.assert_error(result, 403)
            assert f"identity:{rule}" in message
        except AssertionError as ex:
            wrong.append(f"{method} {path}: {ex}")

    assert not wrong, "\n".join(wrong)
    assert _snapshot(identity) == before
    assert identity.works(identity.admin_token)
    assert identity.works(member.token)


#: Create calls with a body no schema accepts: (method, path, body key, rule).
_INVALID_CREATES = [
    ("POST", "/users", "user", "create_user"),
    ("POST", "/groups", "group", "create_group"),
    ("POST", "/projects", "project", "create_project"),
    ("POST", "/domains", "domain", "create_domain"),
    ("POST", "/roles", "role", "create_role"),
    ("POST", "/services", "service", "create_service"),
    ("POST", "/endpoints", "endpoint", "create_endpoint"),
    ("POST", "/regions", "region", "create_region"),
    ("PUT", "/regions/made-up", "region", "create_region"),
]


@pytest.mark.parametrize(("method", "path", "key", "rule"), _INVALID_CREATES)
def test_policy_comes_before_the_body_on_creates(
    identity: Identity, member: Member, method: str, path: str, key: str, rule: str
) -> None:
    """As in Keystone: who may not create learns that (403), not what a valid body is."""
    body = {key: {"name": 7, "description": 7, "enabled": "maybe"}}
    before = _snapshot(identity)

    refused = identity.request(method, path, body, token=member.token)
    assert f"identity:{rule}" in identity.assert_error(refused, 403)
    identity.assert_error(identity.request(method, path, body), 400)
    assert _snapshot(identity) == before


def test_a_member_cannot_revoke_someone_elses_token(identity: Identity, member: Member) -> None:
    result = identity.request(
        "DELETE",
        "/auth/tokens",
        headers={"X-Subject-Token": identity.admin_token},
        token=member.token,
    )

    message = identity.assert_error(result, 403)
    assert "identity:revoke_token" in message
    assert identity.works(identity.admin_token)


# == Content types and methods ===============================================


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "application/xml", "multipart/form-data"],
)
@pytest.mark.parametrize("path", ["/projects", "/auth/tokens"])
def test_a_body_that_is_not_json_is_unsupported(
    identity: Identity, path: str, content_type: str
) -> None:
    token = None if path == "/auth/tokens" else identity.admin_token

    result = identity.request(
        "POST",
        path,
        raw=b'{"project": {"name": "p"}}',
        headers={"Content-Type": content_type},
        token=token,
    )

    identity.assert_error(result, 415)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PUT", "/users"),
        ("DELETE", "/projects"),
        ("POST", "/users/{user_id}"),
        ("PUT", "/projects/{project_id}"),
        ("PATCH", "/auth/tokens"),
        ("POST", "/auth/catalog"),
        ("DELETE", "/role_assignments"),
        ("POST", "/role_inferences"),
        ("TRACE", "/users"),
        ("DELETE", ""),
        ("POST", ""),
    ],
)
def test_an_unsupported_method_is_a_keystone_405(
    identity: Identity, member: Member, method: str, path: str
) -> None:
    path = path.format(user_id=member.user["id"], project_id=member.project["id"])

    result = identity.request(method, path)

    identity.assert_error(result, 405)
    assert result.headers.get("allow")


def test_an_unsupported_method_on_the_root_is_a_keystone_405(identity: Identity) -> None:
    result = identity.client.simulate_request(
        "POST", "/identity", headers={"X-Auth-Token": identity.admin_token}
    )

    identity.assert_error(result, 405)


# == Version discovery ========================================================


def test_the_v3_document_needs_no_token(identity: Identity) -> None:
    result = identity.client.simulate_get("/identity/v3")

    assert result.status_code == 200
    assert result.headers["x-openstack-request-id"].startswith("req-")
    version = result.json["version"]
    assert version["id"].startswith("v3.")
    assert version["status"] == "stable"
    selfs = [link["href"] for link in version["links"] if link["rel"] == "self"]
    assert selfs == [f"{LINK_ROOT}/v3/"]


def test_the_root_lists_the_versions_with_300(identity: Identity) -> None:
    result = identity.client.simulate_get("/identity")

    assert result.status_code == 300
    (version,) = result.json["versions"]["values"]
    assert version["status"] == "stable"
    selfs = [link["href"] for link in version["links"] if link["rel"] == "self"]
    assert selfs == [f"{LINK_ROOT}/v3/"]


def test_discovery_ignores_a_bad_token(identity: Identity) -> None:
    result = identity.client.simulate_get("/identity/v3", headers={"X-Auth-Token": "junk"})

    assert result.status_code == 200


# == Issuing tokens ==========================================================


def _issued(identity: Identity, auth: dict[str, Any], **params: str) -> dict[str, Any]:
    result = identity.authenticate(auth, params=params or None)
    assert result.status_code == 201, result.text
    assert result.headers["X-Subject-Token"]
    assert result.headers["x-openstack-request-id"].startswith("req-")
    token = result.json["token"]
    token["id"] = result.headers["X-Subject-Token"]
    return token


def test_issue_a_project_token_by_names(identity: Identity) -> None:
    token = _issued(identity, identity.password_auth("admin", "secret", project="admin"))

    assert token["methods"] == ["password"]
    assert token["user"]["id"] == identity.admin_user["id"]
    assert token["user"]["domain"] == {"id": "default", "name": "Default"}
    assert token["project"]["id"] == identity.admin_project["id"]
    assert token["project"]["domain"] == {"id": "default", "name": "Default"}
    assert {r["name"] for r in token["roles"]} == {"admin", "member", "reader"}
    assert len(token["audit_ids"]) == 1
    expires = datetime.datetime.strptime(token["expires_at"], "%Y-%m-%dT%H:%M:%S.%fZ")
    issued = datetime.datetime.strptime(token["issued_at"], "%Y-%m-%dT%H:%M:%S.%fZ")
    assert expires - issued == datetime.timedelta(seconds=identity.conf.token.expiration)
    identity_entries = [e for e in token["catalog"] if e["type"] == "identity"]
    assert identity_entries
    assert {ep["interface"] for ep in identity_entries[0]["endpoints"]} >= {"public"}


def test_issue_a_project_token_by_ids(identity: Identity) -> None:
    auth = identity.password_auth(
        identity.admin_user["id"], "secret", project=identity.admin_project["id"], by_id=True
    )

    token = _issued(identity, auth)

    assert token["user"]["id"] == identity.admin_user["id"]
    assert token["project"]["id"] == identity.admin_project["id"]


def test_issue_with_a_domain_named_by_name(identity: Identity) -> None:
    auth = {
        "identity": {
            "methods": ["password"],
            "password": {
                "user": {"name": "admin", "domain": {"name": "Default"}, "password": "secret"}
            },
        },
        "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}},
    }

    token = _issued(identity, auth)

    assert token["project"]["id"] == identity.admin_project["id"]


def test_issue_a_domain_token(identity: Identity, member: Member) -> None:
    reader = identity.role("reader")["id"]
    identity.put(f"/domains/default/users/{member.user['id']}/roles/{reader}")
    auth = identity.password_auth(member.user["name"], member.password, domain="default")

    token = _issued(identity, auth)

    assert token["domain"] == {"id": "default", "name": "Default"}
    assert "project" not in token
    assert [r["name"] for r in token["roles"]] == ["reader"]
    domains = identity.request("GET", "/auth/domains", token=token["id"]).json["domains"]
    assert [d["id"] for d in domains] == ["default"]


def test_issue_an_unscoped_token(identity: Identity) -> None:
    identity.created("/users", "user", {"name": "loner", "password": "pw"})

    implicit = _issued(identity, identity.password_auth("loner", "pw"))
    explicit = _issued(identity, {**identity.password_auth("loner", "pw"), "scope": "unscoped"})

    for token in (implicit, explicit):
        assert not {"project", "domain", "roles", "catalog"} & set(token)
        assert token["user"]["name"] == "loner"


def test_an_explicit_unscoped_scope_ignores_the_default_project(identity: Identity) -> None:
    token = _issued(identity, {**identity.password_auth("admin", "secret"), "scope": "unscoped"})

    assert not {"project", "domain", "roles", "catalog"} & set(token)


def test_without_a_scope_the_default_project_is_used(identity: Identity) -> None:
    token = _issued(identity, identity.password_auth("admin", "secret"))

    assert token["project"]["id"] == identity.admin_project["id"]


def test_rescope_an_unscoped_token_with_the_token_method(identity: Identity) -> None:
    unscoped = _issued(identity, {**identity.password_auth("admin", "secret"), "scope": "unscoped"})
    auth = {
        "identity": {"methods": ["token"], "token": {"id": unscoped["id"]}},
        "scope": {"project": {"id": identity.admin_project["id"]}},
    }

    token = _issued(identity, auth)

    # As Keystone: the methods the first token was got with are kept.
    assert token["methods"] == ["password", "token"]
    assert token["project"]["id"] == identity.admin_project["id"]
    assert token["audit_ids"][1] == unscoped["audit_ids"][0]
    assert token["expires_at"] == unscoped["expires_at"]
    assert identity.works(token["id"])


def test_nocatalog_leaves_the_catalog_out(identity: Identity) -> None:
    auth = identity.password_auth("admin", "secret", project="admin")

    token = _issued(identity, auth, nocatalog="")
    validated = identity.request(
        "GET", "/auth/tokens", headers={"X-Subject-Token": token["id"]}, params={"nocatalog": "1"}
    )

    assert "catalog" not in token
    assert "project" in token
    assert "catalog" not in validated.json["token"]


# == /v3/auth ================================================================


def test_validate_check_and_revoke_a_token(identity: Identity, member: Member) -> None:
    subject = {"X-Subject-Token": member.token}

    got = identity.request("GET", "/auth/tokens", headers=subject)
    head = identity.request("HEAD", "/auth/tokens", headers=subject)
    own = identity.request("GET", "/auth/tokens", headers=subject, token=member.token)
    deleted = identity.request("DELETE", "/auth/tokens", headers=subject)

    assert got.status_code == 200, got.text
    assert got.headers["X-Subject-Token"] == member.token
    assert got.json["token"]["user"]["id"] == member.user["id"]
    assert got.json["token"]["project"]["id"] == member.project["id"]
    assert "catalog" in got.json["token"]
    assert head.status_code == 200
    assert head.content == b""
    assert own.status_code == 200
    assert deleted.status_code == 204
    identity.assert_error(identity.request("GET", "/auth/tokens", headers=subject), 404)
    identity.assert_error(
        identity.request("HEAD", "/auth/tokens", headers=subject), 404, has_body=False
    )
    assert not identity.works(member.token)


def test_the_callers_catalog(identity: Identity) -> None:
    result = identity.request("GET", "/auth/catalog")

    assert result.status_code == 200
    (entry,) = [e for e in result.json["catalog"] if e["type"] == "identity"]
    urls = {ep["url"] for ep in entry["endpoints"]}
    assert urls == {f"{nimbus.wsgi.public_url(identity.conf)}/identity/v3"}


def test_an_unscoped_token_has_no_catalog(identity: Identity) -> None:
    identity.created("/users", "user", {"name": "loner", "password": "pw"})
    token = identity.issue("loner", "pw")

    identity.assert_error(identity.request("GET", "/auth/catalog", token=token), 403)


def test_the_callers_projects_and_domains(identity: Identity, member: Member) -> None:
    projects = identity.request("GET", "/auth/projects", token=member.token)
    domains = identity.request("GET", "/auth/domains", token=member.token)

    assert [p["id"] for p in projects.json["projects"]] == [member.project["id"]]
    assert projects.json["projects"][0]["links"]["self"].endswith(
        f"/v3/projects/{member.project['id']}"
    )
    assert domains.status_code == 200
    assert domains.json["domains"] == []


# == Users ===================================================================


def test_user_crud(identity: Identity) -> None:
    created = identity.request(
        "POST",
        "/users",
        {"user": {"name": "carol", "password": "pw", "email": "c@example.com"}},
    )
    assert created.status_code == 201, created.text
    user = created.json["user"]
    assert "password" not in user
    assert user["domain_id"] == "default"
    assert user["enabled"] is True
    assert user["links"]["self"] == f"{LINK_ROOT}/v3/users/{user['id']}"

    got = identity.request("GET", f"/users/{user['id']}")
    listed = identity.request("GET", "/users", params={"name": "carol"})
    patched = identity.request(
        "PATCH", f"/users/{user['id']}", {"user": {"name": "caroline", "email": None}}
    )

    assert got.json["user"] == user
    assert [u["id"] for u in listed.json["users"]] == [user["id"]]
    assert patched.status_code == 200, patched.text
    assert patched.json["user"]["name"] == "caroline"
    assert identity.issue("caroline", "pw")
    assert identity.request("DELETE", f"/users/{user['id']}").status_code == 204
    identity.assert_error(identity.request("GET", f"/users/{user['id']}"), 404)
    identity.assert_error(identity.request("DELETE", f"/users/{user['id']}"), 404)


def test_a_user_update_may_repeat_its_id_and_domain(identity: Identity) -> None:
    """Clients (tempest's among them) send the user back with its id: as Keystone, fine."""
    user = identity.created("/users", "user", {"name": "repeat", "password": "pw"})
    path = f"/users/{user['id']}"
    same = {"id": user["id"], "domain_id": user["domain_id"], "description": "again"}

    patched = identity.request("PATCH", path, {"user": same})

    assert patched.status_code == 200, patched.text
    assert patched.json["user"]["description"] == "again"
    other = identity.created("/domains", "domain", {"name": "elsewhere-domain"})
    for field, value in (("id", "f" * 32), ("domain_id", other["id"])):
        result = identity.request("PATCH", path, {"user": {field: value, "description": "x"}})
        assert field in identity.assert_error(result, 400)
    assert identity.request("GET", path).json["user"]["description"] == "again"


def test_a_user_changes_its_own_password(identity: Identity, member: Member) -> None:
    path = f"/users/{member.user['id']}/password"
    name = member.user["name"]

    wrong = identity.request(
        "POST", path, {"user": {"original_password": "nope", "password": "n"}}, token=member.token
    )
    changed = identity.request(
        "POST",
        path,
        {"user": {"original_password": member.password, "password": "brand-new"}},
        token=member.token,
    )

    _assert_unauthorized(identity, wrong)
    assert changed.status_code == 204, changed.text
    assert not identity.works(member.token)
    _assert_unauthorized(
        identity, identity.authenticate(identity.password_auth(name, "member-secret"))
    )
    assert identity.works(identity.issue(name, "brand-new", project=member.project["name"]))
    # The old token presented to the token method: 404, as Keystone (tempest checks it).
    by_token = identity.authenticate(
        {"identity": {"methods": ["token"], "token": {"id": member.token}}}
    )
    identity.assert_error(by_token, 404)


def test_whoever_knows_the_current_password_may_change_it(
    identity: Identity, member: Member
) -> None:
    """As in Keystone, which enforces no rule on the change: the password is the check."""
    admin_path = f"/users/{identity.admin_user['id']}/password"
    guess = {"user": {"original_password": "a guess", "password": "mine now"}}

    _assert_unauthorized(identity, identity.request("POST", admin_path, guess, token=member.token))
    assert identity.works(identity.issue("admin", identity.admin_password, project="admin"))

    changed = identity.request(
        "POST",
        f"/users/{member.user['id']}/password",
        {"user": {"original_password": member.password, "password": "set-by-admin"}},
    )
    assert changed.status_code == 204, changed.text
    assert identity.works(
        identity.issue(member.user["name"], "set-by-admin", project=member.project["name"])
    )


def test_the_projects_of_a_user(identity: Identity, member: Member) -> None:
    path = f"/users/{member.user['id']}/projects"

    as_self = identity.request("GET", path, token=member.token)
    as_admin = identity.request("GET", path)

    assert [p["id"] for p in as_self.json["projects"]] == [member.project["id"]]
    assert as_admin.json["projects"] == as_self.json["projects"]


def test_disabling_a_user_revokes_its_tokens(identity: Identity, member: Member) -> None:
    result = identity.request("PATCH", f"/users/{member.user['id']}", {"user": {"enabled": False}})

    assert result.status_code == 200, result.text
    _assert_unauthorized(identity, identity.request("GET", "/auth/projects", token=member.token))
    auth = identity.password_auth(member.user["name"], member.password)
    _assert_unauthorized(identity, identity.authenticate(auth))


# == Projects ================================================================


def test_project_crud_and_filters(identity: Identity) -> None:
    domain = identity.created("/domains", "domain", {"name": "acme"})
    parent = identity.created("/projects", "project", {"name": "parent", "domain_id": domain["id"]})
    child = identity.created("/projects", "project", {"name": "child", "parent_id": parent["id"]})
    off = identity.created(
        "/projects", "project", {"name": "off", "domain_id": domain["id"], "enabled": False}
    )

    def ids(**params: str) -> set[str]:
        result = identity.request("GET", "/projects", params=params)
        assert result.status_code == 200, result.text
        return {p["id"] for p in result.json["projects"]}

    assert child["domain_id"] == domain["id"]
    assert child["parent_id"] == parent["id"]
    assert ids(domain_id=domain["id"]) == {parent["id"], child["id"], off["id"]}
    assert ids(name="child") == {child["id"]}
    assert ids(parent_id=parent["id"]) == {child["id"]}
    assert ids(enabled="false") == {off["id"]}
    assert ids(domain_id=domain["id"], enabled="true") == {parent["id"], child["id"]}

    patched = identity.request(
        "PATCH", f"/projects/{child['id']}", {"project": {"description": "kid"}}
    )
    assert patched.json["project"]["description"] == "kid"
    assert (
        identity.request("GET", f"/projects/{child['id']}").json["project"]
        == patched.json["project"]
    )
    identity.assert_error(identity.request("DELETE", f"/projects/{parent['id']}"), 409)
    assert identity.request("DELETE", f"/projects/{child['id']}").status_code == 204
    identity.assert_error(identity.request("GET", f"/projects/{child['id']}"), 404)


@pytest.mark.parametrize("limit", [1, 2, 3, 7])
def test_project_pages_cover_every_project_once(identity: Identity, limit: int) -> None:
    for number in range(7):
        identity.created("/projects", "project", {"name": f"page-{number}"})
    everything = [p["id"] for p in identity.request("GET", "/projects").json["projects"]]
    assert len(everything) == 8  # and the admin project

    seen: list[str] = []
    result = identity.request("GET", "/projects", params={"limit": str(limit)})
    for _ in range(20):
        assert result.status_code == 200, result.text
        page = result.json
        assert len(page["projects"]) <= limit
        seen += [p["id"] for p in page["projects"]]
        if page["links"]["next"] is None:
            break
        result = identity.follow(page["links"]["next"])

    assert page["links"]["next"] is None
    assert collections.Counter(seen) == collections.Counter(everything)


def test_disabling_a_project_revokes_its_tokens(identity: Identity, member: Member) -> None:
    result = identity.request(
        "PATCH", f"/projects/{member.project['id']}", {"project": {"enabled": False}}
    )

    assert result.status_code == 200, result.text
    _assert_unauthorized(identity, identity.request("GET", "/auth/projects", token=member.token))


# == Domains =================================================================


def test_domain_crud_delete_needs_disable_first(identity: Identity) -> None:
    domain = identity.created("/domains", "domain", {"name": "temp", "description": "t"})
    path = f"/domains/{domain['id']}"

    assert identity.request("GET", path).json["domain"] == domain
    assert [
        d["id"]
        for d in identity.request("GET", "/domains", params={"name": "temp"}).json["domains"]
    ] == [domain["id"]]
    identity.assert_error(identity.request("DELETE", path), 403)
    disabled = identity.request("PATCH", path, {"domain": {"enabled": False}})
    assert disabled.json["domain"]["enabled"] is False
    assert identity.request("DELETE", path).status_code == 204
    identity.assert_error(identity.request("GET", path), 404)


def test_a_domain_is_deleted_with_its_projects(identity: Identity) -> None:
    domain = identity.created("/domains", "domain", {"name": "busy"})
    inside = identity.created("/projects", "project", {"name": "inside", "domain_id": domain["id"]})
    path = f"/domains/{domain['id']}"
    identity.assert_error(identity.request("DELETE", path), 403)  # still enabled
    identity.request("PATCH", path, {"domain": {"enabled": False}})

    assert identity.request("DELETE", path).status_code == 204
    identity.assert_error(identity.request("GET", f"/projects/{inside['id']}"), 404)


# == Roles ===================================================================


def test_role_crud(identity: Identity) -> None:
    role = identity.created("/roles", "role", {"name": "auditor", "description": "reads logs"})
    path = f"/roles/{role['id']}"

    assert identity.request("GET", path).json["role"] == role
    assert [
        r["id"] for r in identity.request("GET", "/roles", params={"name": "auditor"}).json["roles"]
    ] == [role["id"]]
    patched = identity.request("PATCH", path, {"role": {"name": "inspector"}})
    assert patched.json["role"]["name"] == "inspector"
    assert identity.request("DELETE", path).status_code == 204
    identity.assert_error(identity.request("GET", path), 404)


def test_implied_roles(identity: Identity) -> None:
    prior = identity.created("/roles", "role", {"name": "lead"})
    implied = identity.created("/roles", "role", {"name": "helper"})
    path = f"/roles/{prior['id']}/implies/{implied['id']}"

    put = identity.request("PUT", path)
    assert put.status_code == 201, put.text
    inference = put.json["role_inference"]
    assert inference["prior_role"]["id"] == prior["id"]
    assert inference["implies"]["id"] == implied["id"]
    assert identity.request("GET", path).json["role_inference"] == inference
    assert identity.request("HEAD", path).status_code == 204
    listed = identity.request("GET", f"/roles/{prior['id']}/implies").json["role_inference"]
    assert [r["id"] for r in listed["implies"]] == [implied["id"]]
    rules = identity.request("GET", "/role_inferences").json["role_inferences"]
    assert {
        (rule["prior_role"]["id"], implied_ref["id"])
        for rule in rules
        for implied_ref in rule["implies"]
    } >= {(prior["id"], implied["id"])}
    identity.assert_error(
        identity.request("PUT", f"/roles/{implied['id']}/implies/{prior['id']}"), 400
    )

    assert identity.request("DELETE", path).status_code == 204
    identity.assert_error(identity.request("HEAD", path), 404, has_body=False)
    identity.assert_error(identity.request("GET", path), 404)


# == Grants ==================================================================


@pytest.mark.parametrize("target", ["projects", "domains"])
@pytest.mark.parametrize("actor", ["users", "groups"])
def test_grants(identity: Identity, member: Member, target: str, actor: str) -> None:
    role = identity.created("/roles", "role", {"name": "observer"})
    target_id = member.project["id"] if target == "projects" else "default"
    if actor == "users":
        actor_id = member.user["id"]
    else:
        actor_id = identity.created("/groups", "group", {"name": "watchers"})["id"]
    base = f"/{target}/{target_id}/{actor}/{actor_id}/roles"
    path = f"{base}/{role['id']}"

    identity.assert_error(identity.request("HEAD", path), 404, has_body=False)
    assert identity.request("PUT", path).status_code == 204
    assert identity.request("HEAD", path).status_code == 204
    assert identity.request("GET", path).status_code == 204
    listed = identity.request("GET", base)
    assert role["id"] in {r["id"] for r in listed.json["roles"]}
    assert identity.request("DELETE", path).status_code == 204
    identity.assert_error(identity.request("HEAD", path), 404, has_body=False)
    identity.assert_error(identity.request("DELETE", path), 404)
    assert role["id"] not in {r["id"] for r in identity.request("GET", base).json["roles"]}


@pytest.mark.parametrize("actor", ["users", "groups"])
def test_an_inherited_domain_grant_opens_the_domains_projects(
    identity: Identity, actor: str
) -> None:
    domain = identity.created("/domains", "domain", {"name": "corp"})
    project = identity.created("/projects", "project", {"name": "app", "domain_id": domain["id"]})
    user = identity.created("/users", "user", {"name": "dave", "password": "pw"})
    actor_id = user["id"]
    if actor == "groups":
        actor_id = identity.created("/groups", "group", {"name": "devs"})["id"]
        identity.put(f"/groups/{actor_id}/users/{user['id']}")
    member_role = identity.role("member")["id"]
    base = f"/OS-INHERIT/domains/{domain['id']}/{actor}/{actor_id}/roles"
    path = f"{base}/{member_role}/inherited_to_projects"
    by_id = {
        "identity": {
            "methods": ["password"],
            "password": {"user": {"id": user["id"], "password": "pw"}},
        },
        "scope": {"project": {"id": project["id"]}},
    }
    _assert_unauthorized(identity, identity.authenticate(by_id))

    assert identity.request("PUT", path).status_code == 204
    assert identity.request("HEAD", path).status_code == 204
    assert identity.request("GET", path).status_code == 204
    listed = identity.request("GET", f"{base}/inherited_to_projects")
    assert [r["id"] for r in listed.json["roles"]] == [member_role]
    token = _issued(identity, by_id)
    assert token["project"]["id"] == project["id"]
    assert {r["name"] for r in token["roles"]} == {"member", "reader"}
    seen = identity.request("GET", "/auth/projects", token=token["id"]).json["projects"]
    assert [p["id"] for p in seen] == [project["id"]]
    # An inherited grant gives nothing on the domain itself.
    domain_auth = {**by_id, "scope": {"domain": {"id": domain["id"]}}}
    _assert_unauthorized(identity, identity.authenticate(domain_auth))

    assert identity.request("DELETE", path).status_code == 204
    _assert_unauthorized(identity, identity.request("GET", "/auth/projects", token=token["id"]))
    _assert_unauthorized(identity, identity.authenticate(by_id))


def test_removing_a_role_assignment_stops_the_project_token(
    identity: Identity, member: Member
) -> None:
    member_role = identity.role("member")["id"]
    path = f"/projects/{member.project['id']}/users/{member.user['id']}/roles/{member_role}"

    assert identity.request("DELETE", path).status_code == 204

    _assert_unauthorized(identity, identity.request("GET", "/auth/projects", token=member.token))
    auth = identity.password_auth(
        member.user["name"], member.password, project=member.project["name"]
    )
    _assert_unauthorized(identity, identity.authenticate(auth))


# == Role assignments ========================================================


@pytest.fixture
def assignments(identity: Identity, member: Member) -> dict[str, str]:
    """The member (member role), plus a group holding ``observer`` on the member's project."""
    observer = identity.created("/roles", "role", {"name": "observer"})
    group = identity.created("/groups", "group", {"name": "observers"})
    identity.put(f"/groups/{group['id']}/users/{member.user['id']}")
    identity.put(f"/projects/{member.project['id']}/groups/{group['id']}/roles/{observer['id']}")
    return {
        "user": member.user["id"],
        "project": member.project["id"],
        "group": group["id"],
        "observer": observer["id"],
        "member": identity.role("member")["id"],
        "reader": identity.role("reader")["id"],
    }


def _listed(identity: Identity, **params: str) -> list[dict[str, Any]]:
    result = identity.request("GET", "/role_assignments", params=params)
    assert result.status_code == 200, result.text
    return result.json["role_assignments"]


def _pairs(refs: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {
        (ref["role"]["id"], ref.get("user", ref.get("group", {})).get("id", "")) for ref in refs
    }


def test_role_assignments_filters(identity: Identity, assignments: dict[str, str]) -> None:
    a = assignments

    by_user = _listed(identity, **{"user.id": a["user"]})
    by_project = _listed(identity, **{"scope.project.id": a["project"]})
    by_role = _listed(identity, **{"role.id": a["observer"]})

    assert _pairs(by_user) == {(a["member"], a["user"])}
    assert by_user[0]["scope"] == {"project": {"id": a["project"]}}
    assert by_user[0]["links"]["assignment"].endswith(
        f"/v3/projects/{a['project']}/users/{a['user']}/roles/{a['member']}"
    )
    assert _pairs(by_project) == {(a["member"], a["user"]), (a["observer"], a["group"])}
    assert _pairs(by_role) == {(a["observer"], a["group"])}


def test_effective_role_assignments_expand_groups_and_implied_roles(
    identity: Identity, assignments: dict[str, str]
) -> None:
    a = assignments

    refs = _listed(identity, **{"user.id": a["user"], "effective": ""})

    assert _pairs(refs) == {
        (a["member"], a["user"]),
        (a["reader"], a["user"]),
        (a["observer"], a["user"]),
    }
    assert all("group" not in ref for ref in refs)
    assert all(ref["scope"] == {"project": {"id": a["project"]}} for ref in refs)
    (via_group,) = [ref for ref in refs if ref["role"]["id"] == a["observer"]]
    assert via_group["links"]["membership"].endswith(f"/v3/groups/{a['group']}/users/{a['user']}")


def test_role_assignments_with_names(
    identity: Identity, member: Member, assignments: dict[str, str]
) -> None:
    refs = _listed(
        identity, **{"user.id": assignments["user"], "include_names": "1", "effective": "1"}
    )

    names = {ref["role"]["name"] for ref in refs}
    assert names == {"member", "reader", "observer"}
    for ref in refs:
        assert ref["user"]["name"] == member.user["name"]
        assert ref["user"]["domain"] == {"id": "default", "name": "Default"}
        assert ref["scope"]["project"]["name"] == member.project["name"]


def test_a_member_may_list_its_own_assignments(identity: Identity, member: Member) -> None:
    own = identity.request(
        "GET", "/role_assignments", params={"user.id": member.user["id"]}, token=member.token
    )
    other = identity.request(
        "GET",
        "/role_assignments",
        params={"user.id": identity.admin_user["id"]},
        token=member.token,
    )

    assert own.status_code == 200, own.text
    identity.assert_error(other, 403)
