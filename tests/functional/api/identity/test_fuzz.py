"""Fuzz every identity route: never a 5xx, and every 4xx in Keystone's error shape.

The routes come from :func:`nimbus.api.identity.routes.routes`, so a new route
is fuzzed without touching this file.  For each route, hypothesis drives the
whole app with every method the route's resource answers (and a few it does
not), path parameters that are real ids or junk, random query strings and
headers, and bodies that are random JSON, bytes, or valid bodies with fields
mutated.  Most requests carry the admin's token so that they get past policy
into the deep code paths.  Runs are derandomized and bounded.

Bug classes found earlier have tests of their own, kept out of the generic
strategies so that the per-route fuzz keeps looking for new ones: lone UTF-16
surrogates in JSON strings (:func:`test_lone_surrogates_in_strings_are_refused`)
and, in ``test_errors.py``, JSON nested past the recursion limit and integers
of more than 4300 digits.
"""

from __future__ import annotations

import copy
import functools
import itertools
import json
import re
import unittest.mock
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, Phase, given, settings

from nimbus import exception
from nimbus.api.app import Links
from nimbus.api.identity import routes
from nimbus.policy import INTERNAL
from tests.functional.api._fuzz import (
    HEADER_TEXT,
    JUNK_SEGMENTS,
    PRINTABLE,
    describe,
    error_document,
)

if TYPE_CHECKING:
    from tests.functional.api.conftest import Identity, Member

HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
#: Other methods WSGI knows, sent now and then (Falcon answers OPTIONS itself).
OTHER_METHODS = ("OPTIONS", "TRACE")
MOUNT = "/identity"

SETTINGS = settings(
    max_examples=120,
    derandomize=True,
    deadline=None,
    database=None,
    # No shrinking: the app keeps state between examples, so a shrunk example
    # may not replay; the first failing request is reported as it was sent.
    phases=(Phase.explicit, Phase.generate),
    suppress_health_check=list(HealthCheck),
    print_blob=False,
)


def _route_table() -> list[tuple[str, tuple[str, ...]]]:
    """Return (template, methods answered) for every identity route.

    Resources only keep their collaborators when they are built, so stand-ins
    are enough to read the table at collection time;
    :func:`test_the_fuzzed_routes_are_the_apps_routes` checks it against the
    real app.
    """
    stand_in = unittest.mock.Mock()
    table = routes.routes(stand_in, stand_in, Links(None, MOUNT))
    return [
        (
            template,
            tuple(m for m in HTTP_METHODS if callable(getattr(resource, f"on_{m.lower()}", None))),
        )
        for template, resource in table
    ]


ROUTES = _route_table()


def test_the_fuzzed_routes_are_the_apps_routes(services) -> None:
    real = routes.routes(services.identity, services.enforcer, Links(None, MOUNT))

    assert [template for template, _ in real] == [template for template, _ in ROUTES]
    assert len(ROUTES) > 40


# == A pool of real resources =================================================


#: Which pool entry a path parameter draws from, when the names differ.
_POOL_KIND = {
    "project_id": "extra_project_id",
    "user_id": "extra_user_id",
    "implied_role_id": "role_id",
}


class Pool:
    """Real resources whose ids fill path parameters, kept usable between examples.

    The fuzz deletes, disables and revokes what it is given; :meth:`refresh`
    replaces whatever is gone so that later examples still reach deep code.
    The admin's own user, project, domain and roles are never handed out, so
    the admin token keeps working.
    """

    def __init__(
        self, identity: Identity, services: Any, make_member: Callable[..., Member]
    ) -> None:
        self.identity = identity
        self.service = services.identity
        self.make_member = make_member
        self.counter = itertools.count()
        self.member: Any = None
        self.subject = ""
        self.unscoped = ""
        self.domain_token = ""
        self.ids: dict[str, list[str]] = {}
        svc = self.service
        self._kinds: dict[str, tuple[Callable[[str], Any], Callable[[], str]]] = {
            "domain_id": (
                functools.partial(svc.resources.domains.get, INTERNAL),
                lambda: self._new("domain", "dom"),
            ),
            "extra_project_id": (
                functools.partial(svc.resources.projects.get, INTERNAL),
                lambda: self._new("project", "prj"),
            ),
            "extra_user_id": (
                functools.partial(svc.users.get_user, INTERNAL),
                lambda: self._new("user", "usr", password="pw"),
            ),
            "group_id": (
                functools.partial(svc.users.get_group, INTERNAL),
                lambda: self._new("group", "grp"),
            ),
            "role_id": (
                functools.partial(svc.assignments.roles.get, INTERNAL),
                lambda: self._new("role", "role"),
            ),
            "region_id": (
                functools.partial(svc.catalog.regions.get, INTERNAL),
                lambda: self._new("region", "region"),
            ),
            "service_id": (
                functools.partial(svc.catalog.services.get, INTERNAL),
                lambda: self._new("service", "type"),
            ),
            "endpoint_id": (
                functools.partial(svc.catalog.endpoints.get, INTERNAL),
                self._new_endpoint,
            ),
        }
        for kind in self._kinds:
            self.ids[kind] = []
        self.ids["role_id"] = [self._new("role", "role"), self._new("role", "role")]
        self.refresh(self._kinds)

    def fresh(self, prefix: str) -> str:
        """Return a name not used before in this pool."""
        return f"{prefix}-{next(self.counter)}"

    def _new(self, key: str, prefix: str, **attrs: Any) -> str:
        # Regions are named by their id; services need only a type.
        name = {"region": "id", "service": "type"}.get(key, "name")
        return self.identity.created(f"/{key}s", key, {name: self.fresh(prefix), **attrs})["id"]

    def _new_endpoint(self) -> str:
        attrs = {"service_id": self.ids["service_id"][0], "interface": "public"}
        return self.identity.created("/endpoints", "endpoint", {**attrs, "url": "http://h:1/"})[
            "id"
        ]

    def _valid(self, token: str) -> bool:
        try:
            self.service.auth.validate(token)
        except exception.Unauthorized:
            return False
        return True

    def refresh(self, params: Iterable[str] = ()) -> None:
        """Replace revoked tokens, and deleted resources of the kinds *params* use."""
        if not self._valid(self.identity.admin_token):
            self.identity.admin_token = self.identity.issue(
                "admin", self.identity.admin_password, project="admin"
            )
        if self.member is None or not self._valid(self.member.token):
            self.member = self.make_member()
            self.subject = self.unscoped = self.domain_token = ""
            # The member also reads the default domain, for a domain-scoped token.
            reader = self.identity.role("reader")["id"]
            self.identity.put(f"/domains/default/users/{self.member.user['id']}/roles/{reader}")
        name = self.member.user["name"]
        if not self._valid(self.subject):
            self.subject = self.identity.issue(
                name, self.member.password, project=self.member.project["name"]
            )
        if not self._valid(self.unscoped):
            self.unscoped = self.identity.issue(name, self.member.password)
        if not self._valid(self.domain_token):
            self.domain_token = self.identity.issue(name, self.member.password, domain="default")
        kinds = {_POOL_KIND.get(param, param) for param in params}
        if "endpoint_id" in kinds:
            kinds.add("service_id")  # an endpoint is remade on an existing service
        for kind in sorted(kinds & set(self._kinds), key=list(self._kinds).index):
            getter, make = self._kinds[kind]
            kept = []
            for item_id in self.ids[kind] or [make()]:
                try:
                    getter(item_id)
                except exception.NotFound:
                    item_id = make()
                kept.append(item_id)
            self.ids[kind] = kept
        self.ids["project_id"] = [self.member.project["id"], *self.ids["extra_project_id"]]
        self.ids["user_id"] = [self.member.user["id"], *self.ids["extra_user_id"]]
        self.ids["implied_role_id"] = list(reversed(self.ids["role_id"]))

    def real_ids(self, param: str) -> list[str]:
        """Return existing ids for a path parameter (every id for an unknown one)."""
        if param in self.ids:
            return self.ids[param]
        return sorted({i for ids in self.ids.values() for i in ids})

    def admin_auth(self) -> dict[str, Any]:
        return self.identity.password_auth("admin", self.identity.admin_password, project="admin")


# == Strategies ===============================================================

_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=30)
    | st.sampled_from(["", " ", "\x00", "null", "true", "0", "admin", "default"])
)
#: Any JSON document (nesting stays far below the recursion limit).
JSON = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)
#: Values that are wrong for nearly every field.
WRONG = st.one_of(
    st.sampled_from(
        [None, True, False, 0, -1, 1.5, 2**31, 2**63, 2**64, -(2**63), 10**300, 1e308, -1e308]
    ),
    st.sampled_from(["", " ", "\t\n", "\x00", "null", "None", "../..", "😀" * 70]),
    # Fresh containers each time: mutations must not alter shared constants.
    st.sampled_from([[], {}, [None], {"": None}, ["a"] * 3, {"id": None}]).map(copy.deepcopy),
    st.integers(min_value=60, max_value=70_000).map(lambda n: "x" * n),
    st.text(max_size=40),
    st.floats(),
    JSON,
)
_QUERY_NAMES = [
    "limit",
    "marker",
    "name",
    "enabled",
    "domain_id",
    "parent_id",
    "is_domain",
    "user.id",
    "group.id",
    "role.id",
    "scope.project.id",
    "scope.domain.id",
    "scope.OS-INHERIT:inherited_to",
    "effective",
    "include_names",
    "nocatalog",
    "allow_expired",
    "type",
    "service_id",
    "interface",
    "region_id",
    "parent_region_id",
    "id",
]
_QUERY_VALUES = [
    "",
    "0",
    "1",
    "2",
    "true",
    "false",
    "yes",
    "-1",
    "1e3",
    "99999999999999999999999",
    "projects",
    "public",
    "admin",
    "default",
]
_JSON_TYPES = [
    "application/json",
    "application/json; charset=utf-8",
    "Application/JSON",
    "application/vnd.openstack.identity-v3+json",
    "application/openstack-images-v2.1-json-patch",
]
_OTHER_TYPES = [
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "application/json;;;",
    "*/*",
    "",
]
_RAW_BODIES = st.one_of(
    st.binary(max_size=80),
    st.sampled_from(
        [
            b"{",
            b"[",
            b'{"a":',
            b"nul",
            b"{}garbage",
            b'{"a": 1, "a": 2}',
            b"\xef\xbb\xbf{}",
            b"NaN",
            b"-Infinity",
            b'"\\u0000"',
            '{"x": 1}'.encode("utf-16"),
            b"[" * 200 + b"]" * 200,
        ]
    ),
    st.text(alphabet=PRINTABLE, max_size=80).map(str.encode),
)


def _valid_bodies(pool: Pool) -> dict[tuple[str, str], Callable[[], Any]]:
    """Return a factory of a valid body for each (template, method) that takes one."""
    ids = pool.ids
    return {
        ("/v3/auth/tokens", "POST"): lambda: {"auth": pool.admin_auth()},
        ("/v3/domains", "POST"): lambda: {
            "domain": {"name": pool.fresh("dom"), "description": "d", "enabled": True}
        },
        ("/v3/domains/{domain_id}", "PATCH"): lambda: {
            "domain": {"description": "d", "enabled": True}
        },
        ("/v3/projects", "POST"): lambda: {
            "project": {
                "name": pool.fresh("prj"),
                "domain_id": ids["domain_id"][0],
                "description": "d",
                "enabled": True,
                "tags": [],
            }
        },
        ("/v3/projects/{project_id}", "PATCH"): lambda: {
            "project": {"description": "d", "enabled": True}
        },
        ("/v3/users", "POST"): lambda: {
            "user": {
                "name": pool.fresh("usr"),
                "password": "pw",
                "email": "u@example.com",
                "enabled": True,
                "default_project_id": ids["project_id"][-1],
                "description": "d",
            }
        },
        ("/v3/users/{user_id}", "PATCH"): lambda: {
            "user": {"description": "d", "email": "e@example.com", "enabled": True}
        },
        ("/v3/users/{user_id}/password", "POST"): lambda: {
            "user": {"original_password": pool.member.password, "password": "changed"}
        },
        ("/v3/groups", "POST"): lambda: {
            "group": {"name": pool.fresh("grp"), "description": "d", "domain_id": "default"}
        },
        ("/v3/groups/{group_id}", "PATCH"): lambda: {"group": {"description": "d"}},
        ("/v3/roles", "POST"): lambda: {"role": {"name": pool.fresh("role"), "description": "d"}},
        ("/v3/roles/{role_id}", "PATCH"): lambda: {"role": {"description": "d"}},
        ("/v3/services", "POST"): lambda: {
            "service": {"type": "compute", "name": pool.fresh("svc"), "enabled": True}
        },
        ("/v3/services/{service_id}", "PATCH"): lambda: {
            "service": {"description": "d", "enabled": True}
        },
        ("/v3/endpoints", "POST"): lambda: {
            "endpoint": {
                "service_id": ids["service_id"][0],
                "interface": "public",
                "url": "http://h:8774/v2.1/$(project_id)s",
                "region_id": ids["region_id"][0],
                "enabled": True,
            }
        },
        ("/v3/endpoints/{endpoint_id}", "PATCH"): lambda: {
            "endpoint": {
                "url": "https://h/",
                "interface": "internal",
                "region_id": ids["region_id"][0],
            }
        },
        ("/v3/regions", "POST"): lambda: {
            "region": {
                "id": pool.fresh("region"),
                "description": "d",
                "parent_region_id": ids["region_id"][0],
            }
        },
        ("/v3/credentials", "POST"): lambda: {
            "credential": {
                "user_id": pool.member.user["id"],
                "project_id": ids["project_id"][0],
                "type": "ec2",
                "blob": json.dumps({"access": pool.fresh("ak"), "secret": "s"}),
            }
        },
        ("/v3/credentials/{credential_id}", "PATCH"): lambda: {
            "credential": {"blob": json.dumps({"access": "a", "secret": "s"}), "type": "ec2"}
        },
        ("/v3/regions/{region_id}", "PUT"): lambda: {"region": {"description": "d"}},
        ("/v3/regions/{region_id}", "PATCH"): lambda: {"region": {"description": "d"}},
    }


def _auth_bodies(pool: Pool) -> list[Callable[[], Any]]:
    """Return factories of valid ``POST /v3/auth/tokens`` bodies of every kind."""
    member = pool.member

    def password(**scope: Any) -> dict[str, Any]:
        return pool.identity.password_auth(member.user["name"], member.password, **scope)

    def token(token_id: str, scope: Any) -> dict[str, Any]:
        return {"identity": {"methods": ["token"], "token": {"id": token_id}}, "scope": scope}

    return [
        lambda: {"auth": pool.admin_auth()},
        lambda: {"auth": password(project=member.project["name"])},
        lambda: {
            "auth": pool.identity.password_auth(
                member.user["id"], member.password, project=member.project["id"], by_id=True
            )
        },
        lambda: {"auth": password(domain="default")},
        lambda: {"auth": {**password(), "scope": "unscoped"}},
        lambda: {"auth": token(pool.unscoped, {"project": {"id": member.project["id"]}})},
        lambda: {"auth": token(pool.subject, {"domain": {"name": "Default"}})},
    ]


def _paths(document: Any, prefix: tuple = ()) -> Iterator[tuple]:
    """Yield the path of every value inside *document*."""
    if isinstance(document, dict):
        items: Any = document.items()
    elif isinstance(document, list):
        items = enumerate(document)
    else:
        return
    for key, value in items:
        yield (*prefix, key)
        yield from _paths(value, (*prefix, key))


def _parent(document: Any, path: tuple) -> Any:
    for key in path[:-1]:
        document = document[key]
    return document


@st.composite
def near_valid(draw: st.DrawFn, valid: Any) -> Any:
    """Return *valid* with one to three fields mutated, dropped, renamed or added."""
    document = copy.deepcopy(valid)
    for _ in range(draw(st.integers(1, 3))):
        paths = list(_paths(document))
        if not paths:
            return draw(WRONG)
        path = draw(st.sampled_from(paths))
        parent = _parent(document, path)
        action = draw(st.sampled_from(["wrong", "wrong", "wrong", "text", "drop", "rename", "add"]))
        if action == "wrong":
            parent[path[-1]] = draw(WRONG)
        elif action == "text":
            parent[path[-1]] = draw(st.text(min_size=1, max_size=80))
        elif action == "drop":
            del parent[path[-1]]
        elif action == "rename" and isinstance(parent, dict):
            parent[draw(st.text(max_size=12))] = parent.pop(path[-1])
        elif isinstance(parent, dict):
            parent[draw(st.text(max_size=12))] = draw(JSON)
        else:
            parent.append(draw(JSON))
    return document


def _path_value(draw: st.DrawFn, pool: Pool, param: str) -> str:
    kind = draw(st.sampled_from(["real"] * 16 + ["junk", "text", "long", "uuid"]))
    if kind == "real":
        return draw(st.sampled_from(pool.real_ids(param)))
    if kind == "junk":
        return draw(st.sampled_from(JUNK_SEGMENTS))
    if kind == "long":
        return "a" * draw(st.sampled_from([64, 65, 255, 256, 1024, 5000]))
    if kind == "uuid":
        return draw(st.uuids()).hex
    return quote(draw(st.text(min_size=1, max_size=30)), safe="")


def _query(draw: st.DrawFn, pool: Pool) -> str:
    if draw(st.integers(0, 9)) == 0:
        # The simulator takes the query without its "?" (and "#" would end the URL).
        return draw(st.text(alphabet=PRINTABLE.replace("#", ""), max_size=40)).lstrip("?")
    ids = pool.real_ids("any")
    value = st.sampled_from(_QUERY_VALUES) | st.sampled_from(ids) | st.text(max_size=30)
    name = st.sampled_from(_QUERY_NAMES) | st.text(max_size=10)
    return urlencode(draw(st.lists(st.tuples(name, value), max_size=4)))


def _headers(draw: st.DrawFn, pool: Pool, template: str) -> dict[str, str]:
    tokens = {
        "admin": pool.identity.admin_token,
        "member": pool.member.token,
        "subject": pool.subject,
        "unscoped": pool.unscoped,
        "domain": pool.domain_token,
    }
    headers = {}
    callers = ["admin"] * 9 + ["member", "subject", "unscoped", "domain", "junk", "empty", "none"]
    if "{user_id}" in template:
        callers += ["member"] * 5  # what users may do to themselves
    choice = draw(st.sampled_from(callers))
    if choice in tokens:
        headers["X-Auth-Token"] = tokens[choice]
    elif choice == "junk":
        headers["X-Auth-Token"] = draw(HEADER_TEXT | st.sampled_from(["gAAAAA", "x" * 3000]))
    elif choice == "empty":
        headers["X-Auth-Token"] = ""
    subject = draw(st.sampled_from(["subject", "member", "admin", "junk", "none"]))
    if subject in tokens:
        headers["X-Subject-Token"] = tokens[subject]
    elif subject == "junk":
        headers["X-Subject-Token"] = draw(HEADER_TEXT)
    kind = draw(st.integers(0, 9))
    if kind == 0:
        headers["Content-Type"] = draw(HEADER_TEXT)
    elif kind == 1:
        headers["Content-Type"] = draw(st.sampled_from(_OTHER_TYPES))
    elif kind > 2:
        headers["Content-Type"] = draw(st.sampled_from(_JSON_TYPES))
    if draw(st.booleans()):
        headers["X-OpenStack-Request-ID"] = draw(
            HEADER_TEXT | st.just("req-00000000-0000-0000-0000-000000000000")
        )
    return headers


def _body(draw: st.DrawFn, pool: Pool, template: str, method: str) -> bytes | None:
    factory = _valid_bodies(pool).get((template, method))
    if template == "/v3/auth/tokens" and method == "POST":
        factory = draw(st.sampled_from(_auth_bodies(pool)))
    kinds = ["valid", "near", "near", "near", "json", "raw", "none"]
    if method not in ("POST", "PUT", "PATCH"):
        kinds = ["none"] * 4 + ["json", "raw"]
    kind = draw(st.sampled_from(kinds))
    if kind in ("valid", "near") and factory is None:
        kind = draw(st.sampled_from(["none", "none", "json", "raw"]))
    if kind == "none":
        return None
    if kind == "raw":
        return draw(_RAW_BODIES)
    if kind == "json":
        document = draw(JSON)
    elif kind == "valid":
        document = factory()
    else:
        document = draw(near_valid(factory()))
    return json.dumps(document).encode()


# == Checks ===================================================================


def check_response(result: Any, method: str, request: str, caplog: Any) -> None:
    """Assert no 5xx, a request id, and Keystone's shape for every 4xx."""
    body = error_document(result, method, request, caplog)
    if body is None:
        return
    assert isinstance(body, dict) and set(body) == {"error"}, (request, body)
    error = body["error"]
    assert error["code"] == result.status_code, (request, body)
    assert isinstance(error["title"], str) and error["title"], (request, body)
    assert isinstance(error["message"], str) and error["message"].strip(), (request, body)


# == The fuzz =================================================================

#: Writes first, so that reads find something; deletes last.
_METHOD_ORDER = ("POST", "PUT", "GET", "HEAD", "PATCH", "DELETE")


def _send_valid_requests(
    identity: Identity, pool: Pool, template: str, methods: tuple[str, ...], caplog: Any
) -> None:
    """Send each method once the way a client would: real ids, valid body, right token.

    Random examples reach success paths only now and then; this makes sure
    each is taken, and leaves state (a grant, an implication) for them to find.
    """
    params = re.findall(r"{(\w+)}", template)
    factories = _valid_bodies(pool)
    for method in sorted(methods, key=_METHOD_ORDER.index):
        pool.refresh(params)
        path = MOUNT + ("" if template == "/" else template)
        for param in params:
            path = path.replace(f"{{{param}}}", pool.real_ids(param)[0])
        headers = {"X-Auth-Token": identity.admin_token, "X-Subject-Token": pool.subject}
        if template.endswith("/password"):
            headers["X-Auth-Token"] = pool.member.token  # only one's own
        factory = factories.get((template, method))
        body = None if factory is None else json.dumps(factory()).encode()
        if body is not None:
            headers["Content-Type"] = "application/json"
        request = describe(method, path, "", headers, body)
        caplog.clear()

        result = identity.client.simulate_request(method, path, headers=headers, body=body)

        check_response(result, method, request, caplog)


@pytest.mark.parametrize(("template", "methods"), ROUTES, ids=[template for template, _ in ROUTES])
def test_route_never_fails(
    identity: Identity,
    services: Any,
    make_member: Callable[..., Member],
    caplog: pytest.LogCaptureFixture,
    template: str,
    methods: tuple[str, ...],
) -> None:
    pool = Pool(identity, services, make_member)
    params = re.findall(r"{(\w+)}", template)
    sent: set[str] = set()
    _send_valid_requests(identity, pool, template, methods, caplog)

    @SETTINGS
    @given(st.data())
    def exercise(data: st.DataObject) -> None:
        pool.refresh(params)
        draw = data.draw
        if methods and draw(st.integers(0, 7)):
            method = draw(st.sampled_from(methods))
        else:
            method = draw(st.sampled_from(HTTP_METHODS + OTHER_METHODS))
        path = MOUNT + ("" if template == "/" else template)
        for param in params:
            path = path.replace(f"{{{param}}}", _path_value(draw, pool, param), 1)
        query = _query(draw, pool)
        headers = _headers(draw, pool, template)
        body = _body(draw, pool, template, method)
        request = describe(method, path, query, headers, body)
        caplog.clear()

        result = identity.client.simulate_request(
            method, path, query_string=query, headers=headers, body=body
        )

        sent.add(method)
        check_response(result, method, request, caplog)

    exercise()
    assert set(methods) <= sent


# == Bug classes found earlier ==================================================

#: Every (template, method) with a valid body; its strings are stored or looked up.
_STRING_ROUTES = list(_valid_bodies(unittest.mock.Mock()))


@pytest.mark.parametrize(
    ("template", "method"),
    [pytest.param(t, m, id=f"{m} {t}") for t, m in _STRING_ROUTES],
)
def test_lone_surrogates_in_strings_are_refused(
    identity: Identity,
    services: Any,
    make_member: Callable[..., Member],
    caplog: pytest.LogCaptureFixture,
    template: str,
    method: str,
) -> None:
    pool = Pool(identity, services, make_member)
    valid = _valid_bodies(pool)[(template, method)]
    failures = []
    sample = valid()
    for where in [p for p in _paths(sample) if isinstance(_parent(sample, p)[p[-1]], str)]:
        pool.refresh(re.findall(r"{(\w+)}", template))
        document = valid()
        _parent(document, where)[where[-1]] += "\ud800"
        body = json.dumps(document).encode()  # ASCII: the surrogate travels as \ud800
        path = MOUNT + template
        for param in re.findall(r"{(\w+)}", template):
            path = path.replace(f"{{{param}}}", pool.real_ids(param)[0])
        headers = {"X-Auth-Token": identity.admin_token, "Content-Type": "application/json"}
        if template.endswith("/password"):
            headers["X-Auth-Token"] = pool.member.token
        request = describe(method, path, "", headers, body)
        caplog.clear()

        result = identity.client.simulate_request(method, path, headers=headers, body=body)

        try:
            check_response(result, method, request, caplog)
        except AssertionError as ex:
            failures.append(f"{'/'.join(map(str, where))}: {ex}")
    assert not failures, "\n\n".join(failures)
