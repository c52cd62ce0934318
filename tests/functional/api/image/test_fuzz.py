"""Fuzz every image route: never a 5xx, and every 4xx in Glance's error shape.

The routes come from :func:`nimbus.api.image.routes.routes`, so a new route
is fuzzed without touching this file.  For each route, hypothesis drives the
whole app with every method (the ones the route answers most of the time),
path parameters that are real image ids or junk (random text, unicode, very
long), random query strings built from the list filters (repeated keys
included), random headers (``Content-Type``, ``Range``, ``Content-MD5``,
request ids) and bodies that are random JSON, JSON-patch-shaped lists,
near-valid documents or random bytes.  Requests carry the admin's token or a
member's, so that they get past policy into the deep code paths.  Focused
tests then send many more examples of the richest inputs (JSON patches,
create bodies, list queries, uploads), and two grids send every operation on
every attribute the schema knows with every value that fits it.  Runs are
derandomized and bounded (about 25 s for the file).

Bug classes found earlier have tests of their own in ``test_errors.py``;
the strategies here stay generic so that the fuzz keeps looking for new ones.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import re
import struct
import unittest.mock
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from unittest.mock import ANY
from urllib.parse import quote, urlencode

import hypothesis.strategies as st
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, Phase, given, settings

from nimbus.api.app import Links
from nimbus.api.image import routes
from nimbus.conf import new_config
from nimbus.image import models, query, schema
from tests.functional.api._fuzz import (
    HEADER_TEXT,
    JUNK_SEGMENTS,
    PRINTABLE,
    describe,
    error_document,
)

if TYPE_CHECKING:
    from tests.functional.api.conftest import Member
    from tests.functional.api.image.conftest import ImageAPI

HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
MOUNT = "/image"
PATCH_TYPES = (
    "application/openstack-images-v2.1-json-patch",
    "application/openstack-images-v2.0-json-patch",
)
OCTET = "application/octet-stream"
DATA = b"0123456789" * 10
#: What webob answers a request preferring HTML, or accepting neither HTML nor JSON.
PAGE_TYPES = ("text/html; charset=UTF-8", "text/plain; charset=UTF-8")

SETTINGS = settings(
    max_examples=90,
    derandomize=True,
    deadline=None,
    database=None,
    # No shrinking: the app keeps state between examples, so a shrunk example
    # may not replay; the first failing request is reported as it was sent.
    phases=(Phase.explicit, Phase.generate),
    suppress_health_check=list(HealthCheck),
    print_blob=False,
)
#: The focused tests send one kind of request each, cheaply: many more examples.
FOCUSED = settings(SETTINGS, max_examples=500)


def _route_table() -> list[tuple[str, tuple[str, ...]]]:
    """Return (template, methods answered) for every image route.

    Resources only keep their collaborators when they are built (the schema
    documents read the formats from a real config), so stand-ins are enough
    to read the table at collection time;
    :func:`test_the_fuzzed_routes_are_the_apps_routes` checks it against the
    real app.
    """
    conf = new_config()
    conf([], default_config_files=[])
    stand_in = unittest.mock.Mock(conf=conf)
    table = routes.routes(stand_in, stand_in, stand_in, Links(None, MOUNT))
    return [
        (
            template,
            tuple(m for m in HTTP_METHODS if callable(getattr(resource, f"on_{m.lower()}", None))),
        )
        for template, resource in table
    ]


ROUTES = _route_table()


def test_the_fuzzed_routes_are_the_apps_routes(services: Any) -> None:
    real = routes.routes(
        services.image, services.image_data, services.image_tasks, Links(None, MOUNT)
    )

    assert [template for template, _ in real] == [template for template, _ in ROUTES]
    assert len(ROUTES) >= 14


# == A pool of real images ====================================================


def _qcow2(virtual_size: int = 1 << 20, *, backing_offset: int = 0) -> bytes:
    """Return a qcow2 (v3) header padded to its first 64 KiB cluster."""
    header = struct.pack(
        ">4sIQIIQIIQQIIQ", b"QFI\xfb", 3, backing_offset, 0, 16, virtual_size, 0, 0, 0, 0, 0, 0, 0
    )
    header += struct.pack(">QQQII", 0, 0, 0, 4, 104)
    return header.ljust(64 * 1024, b"\0")


class Pool:
    """Real images in every state, whose ids fill path parameters.

    The fuzz deletes, deactivates and rewrites what it is given;
    :meth:`refresh` remakes whatever was deleted, so that later examples
    still reach deep code.  The member's project owns some images, and is a
    member of one; the other project owns images the member should not see.
    """

    def __init__(
        self, images: ImageAPI, services: Any, member: Member, other: Member, domain_token: str
    ) -> None:
        self.images = images
        self.database = services.database
        self.member = member
        self.other = other
        self.tokens = {
            "admin": images.admin_token,
            "member": member.token,
            "other": other.token,
            "domain": domain_token,
        }
        mine = member.project["id"]
        theirs = other.project["id"]
        self._makers: dict[str, Callable[[], str]] = {
            "queued": lambda: images.create(foo="bar", tags=["t"])["id"],
            "active": lambda: images.active(DATA, visibility="public"),
            "deactivated": self._deactivated,
            "member_queued": lambda: images.create(owner=mine, visibility="private")["id"],
            "member_active": lambda: images.active(DATA, owner=mine, hw_disk_bus="virtio"),
            "member_shared": lambda: self._shared(mine, theirs),
            "shared_with_member": lambda: self._shared(theirs, mine),
            "other_private": lambda: images.active(DATA, owner=theirs, visibility="private"),
            "protected": lambda: images.active(DATA, owner=mine, protected=True),
            "qcow2": lambda: images.create(owner=mine, disk_format="qcow2")["id"],
        }
        self.ids: dict[str, str] = {kind: make() for kind, make in self._makers.items()}

    def _deactivated(self) -> str:
        image_id = self.images.active(DATA)
        result = self.images.request("POST", f"/images/{image_id}/actions/deactivate")
        assert result.status_code == 204, result.text
        return image_id

    def _shared(self, owner: str, member: str) -> str:
        image_id = self.images.create(owner=owner, visibility="shared", tags=["t"])["id"]
        self.images.add_member(image_id, member)
        return image_id

    def refresh(self) -> None:
        """Remake the images the fuzz deleted."""
        with self.database.reader() as session:
            present = set(session.execute(sa.select(models.Image.id)).scalars())
        for kind, image_id in self.ids.items():
            if image_id not in present:
                self.ids[kind] = self._makers[kind]()

    def image_ids(self) -> list[str]:
        return list(self.ids.values())

    def project_ids(self) -> list[str]:
        return [self.member.project["id"], self.other.project["id"]]


@pytest.fixture
def pool(images: ImageAPI, services: Any, alice: Member, bob: Member, domain_token: str) -> Pool:
    """Images in every state, owned by the admin, Alice (the member) and Bob."""
    return Pool(images, services, alice, bob, domain_token)


# == Strategies ===============================================================

#: Text without NUL: bodies holding one are refused up front, so it comes from constants only.
_TEXT = st.text(
    alphabet=st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=30
)
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | _TEXT
    | st.sampled_from(["", " ", "\x00", "null", "true", "0", "raw", "bare", "public", "active"])
)
#: Any JSON document (nesting stays far below the recursion limit).
JSON = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
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
    st.integers(min_value=250, max_value=70_000).map(lambda n: "x" * n),
    _TEXT,
    JSON,
)


def _mostly(usual: st.SearchStrategy[Any], odd: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Draw from *usual* four times in five, else from *odd*."""
    return st.sampled_from([usual] * 4 + [odd]).flatmap(lambda chosen: chosen)


#: Attributes a patch may change (by the schema), and a few custom properties.
_WRITABLE = sorted(
    {*schema.BASE_PROPERTIES, "foo", "hw_disk_bus", "owner_specified.x"}
    - schema.READ_ONLY
    - schema.RESERVED
)
#: Attributes no patch may touch.
_UNTOUCHABLE = sorted(schema.READ_ONLY | schema.RESERVED)
_KNOWN_PATHS = _mostly(
    st.sampled_from([f"/{name}" for name in _WRITABLE]),
    st.sampled_from([f"/{name}" for name in _UNTOUCHABLE]),
)
_ODD_PATHS = st.one_of(
    st.sampled_from(["/locations/-", "/locations/0", "/", "", "name", "/a/b", "/~1x", "/~0", "//"]),
    _TEXT.map(lambda t: "/" + t),
    WRONG,
)
_ODD_OPS = st.sampled_from(["move", "copy", "test", "ADD", ""]) | WRONG


@st.composite
def patch_operation(draw: st.DrawFn) -> Any:
    """Return one JSON-patch operation: mostly well-formed, on a known attribute."""
    op = draw(_mostly(st.sampled_from(["add", "remove", "replace"]), _ODD_OPS))
    path = draw(_mostly(_KNOWN_PATHS, _ODD_PATHS))
    operation: dict[str, Any] = {"op": op, "path": path}
    if op != "remove" or not draw(st.integers(0, 9)):
        operation["value"] = draw(_patch_value(path))
    damage = draw(st.sampled_from(["none"] * 8 + ["extra", "drop"]))
    if damage == "extra":
        operation[draw(st.sampled_from(["from", "extra", "op", "path", "value"]))] = draw(JSON)
    elif damage == "drop":
        del operation[draw(st.sampled_from(sorted(operation)))]
    return operation


@st.composite
def patch_document(draw: st.DrawFn) -> Any:
    """Return a list of JSON-patch operations, now and then with a non-operation in it."""
    operations = draw(
        _mostly(
            st.lists(patch_operation(), min_size=1, max_size=2),
            st.lists(patch_operation(), max_size=5),
        )
    )
    if not draw(st.integers(0, 9)):
        operations.insert(draw(st.integers(0, len(operations))), draw(JSON))
    return operations


def _fitting_values(name: str) -> list[Any]:
    """Return values the image schema allows for attribute *name* (a string if unknown)."""
    spec = schema.BASE_PROPERTIES.get(name, {"type": "string"})
    types = spec.get("type", "string")
    types = [types] if isinstance(types, str) else types
    fitting: list[Any] = []
    if "enum" in spec:
        fitting += [v for v in spec["enum"] if v is not None]
    if name in ("disk_format", "container_format"):
        fitting += ["raw", "qcow2", "iso", "bare", "ovf"]
    if "null" in types:
        fitting.append(None)
    if "string" in types and "enum" not in spec:
        fitting += [str(uuid.UUID(int=7))] if "pattern" in spec else ["v", "virtio", "é" * 3]
    if "integer" in types:
        fitting += [0, 1, 2**31 - 1]
    if "boolean" in types:
        fitting += [True, False]
    if "array" in types:
        fitting += [[], ["t"], ["t", "u", "t"]]
    return fitting


def _patch_value(path: Any) -> st.SearchStrategy[Any]:
    """Return values that fit the schema of *path* more often than not, and anything else."""
    name = path[1:] if isinstance(path, str) else ""
    return _mostly(st.sampled_from(_fitting_values(name)), WRONG)


_CREATE_BASE: dict[str, Any] = {
    "name": "fuzz",
    "disk_format": "raw",
    "container_format": "bare",
    "visibility": "private",
    "min_disk": 1,
    "min_ram": 1,
    "protected": False,
    "tags": ["a", "b"],
    "hw_disk_bus": "virtio",
}


@st.composite
def create_document(draw: st.DrawFn) -> Any:
    """Return a create body: valid, or with a few attributes wrong, dropped or added."""
    document = copy.deepcopy(_CREATE_BASE)
    for _ in range(draw(st.integers(0, 3))):
        action = draw(st.sampled_from(["wrong", "drop", "add", "add_known"]))
        if action == "wrong":
            document[draw(st.sampled_from(sorted(document)))] = draw(WRONG)
        elif action == "drop" and document:
            del document[draw(st.sampled_from(sorted(document)))]
        elif action == "add":
            document[draw(_TEXT)] = draw(JSON)
        else:
            name = draw(st.sampled_from(_WRITABLE + _UNTOUCHABLE))
            document[name] = draw(_patch_value(f"/{name}"))
    return document


@st.composite
def member_document(draw: st.DrawFn, project_ids: list[str]) -> Any:
    """Return a member add or update body, often valid."""
    key = draw(st.sampled_from(["member", "status"]))
    if key == "member":
        value = draw(st.sampled_from(project_ids) | WRONG)
    else:
        value = draw(st.sampled_from([*schema.MEMBER_STATUSES, "bogus"]) | WRONG)
    document: Any = {key: value}
    if not draw(st.integers(0, 5)):
        document = draw(near_json(document))
    return document


@st.composite
def near_json(draw: st.DrawFn, document: dict[str, Any]) -> Any:
    """Return *document* with a key added or its value replaced, or something else."""
    choice = draw(st.integers(0, 2))
    if choice == 0:
        return {**document, draw(_TEXT): draw(JSON)}
    if choice == 1:
        return {key: draw(WRONG) for key in document}
    return draw(JSON)


#: Every list filter and paging parameter, and custom-property filters.
_QUERY_NAMES = [
    "limit",
    "marker",
    "sort_key",
    "sort_dir",
    "sort",
    "name",
    "id",
    "status",
    "visibility",
    "owner",
    "tag",
    "disk_format",
    "container_format",
    "member_status",
    "size_min",
    "size_max",
    "created_at",
    "updated_at",
    "protected",
    "os_hidden",
    "min_disk",
    "hw_disk_bus",
    "foo",
]
_TIMES = [
    "2026-01-31T12:00:00Z",
    "2000-01-01",
    "2026-01-31T12:00:00+02:00",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z",
    "not-a-date",
    "",
]
_QUERY_VALUES = [
    "",
    "0",
    "1",
    "-1",
    "25",
    "1000",
    "1001",
    "99999999999999999999999",
    "1e3",
    "true",
    "false",
    "maybe",
    "asc",
    "desc",
    "sideways",
    *query.SORT_KEYS,
    *(f"{key}:{d}" for key in ("name", "size", "created_at") for d in ("asc", "desc", "up")),
    "name:asc,id:desc",
    "name,size",
    *schema.VISIBILITIES,
    "all",
    *schema.MEMBER_STATUSES,
    *schema.STATUSES,
    "bogus",
    "raw",
    "bare",
    "in:raw,qcow2",
    'in:"a,b",c',
    "in:",
    *(f"{op}:{time}" for op in ("gt", "gte", "lt", "lte", "eq", "neq", "zz") for time in _TIMES),
    *_TIMES,
]


def _path_value(draw: st.DrawFn, pool: Pool, param: str) -> str:
    kind = draw(st.sampled_from(["real"] * 12 + ["junk", "text", "long", "uuid", "unicode"]))
    if kind == "real":
        if param == "member_id":
            return draw(st.sampled_from(pool.project_ids()))
        if param == "tag":
            return draw(st.sampled_from(["t", "u", "new"]))
        return draw(st.sampled_from(pool.image_ids()))
    if kind == "junk":
        return draw(st.sampled_from(JUNK_SEGMENTS))
    if kind == "long":
        return draw(st.sampled_from(["a", "%C3%A9"])) * draw(
            st.sampled_from([200, 255, 256, 1024, 5000])
        )
    if kind == "uuid":
        return str(draw(st.uuids()))
    if kind == "unicode":
        text = st.text(alphabet=st.characters(min_codepoint=0x80), min_size=1, max_size=20)
        return quote(draw(text), safe="")
    return quote(draw(st.text(min_size=1, max_size=30)), safe="")


#: Text for query names and values; NUL is refused up front, so it is added rarely.
_QUERY_TEXT = st.text(
    alphabet=st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=30
)


def _query(draw: st.DrawFn, pool: Pool) -> str:
    if not draw(st.integers(0, 9)):
        # The simulator takes the query without its "?" (and "#" would end the URL).
        return draw(st.text(alphabet=PRINTABLE.replace("#", ""), max_size=40)).lstrip("?")
    value = (
        st.sampled_from(_QUERY_VALUES)
        | st.sampled_from(pool.image_ids() + pool.project_ids())
        | _QUERY_TEXT
    )
    name = st.sampled_from(_QUERY_NAMES) | _QUERY_TEXT
    # A list of pairs: the same name may come more than once.
    pairs = draw(st.lists(st.tuples(name, value), max_size=5))
    if not draw(st.integers(0, 39)):
        pairs.append(("name", "\x00"))
    return urlencode(pairs)


_CONTENT_TYPES = [
    "application/json",
    *PATCH_TYPES,
    OCTET,
    "text/plain",
    "application/json; charset=utf-8",
    "application/vnd.openstack.images+json",
    "multipart/form-data; boundary=x",
]


_ACCEPTS = [
    "*/*",
    "application/json",
    "text/html",
    "text/plain",
    "application/json;q=0, text/*;q=0.5",
    "",
]


def _headers(draw: st.DrawFn, pool: Pool, fitting: str) -> dict[str, str]:
    """Return random headers; the ``Content-Type`` is often the one that fits the body."""
    headers = {}
    callers = ["admin"] * 5 + ["member"] * 4 + ["other", "domain", "junk", "none"]
    caller = draw(st.sampled_from(callers))
    if caller in pool.tokens:
        headers["X-Auth-Token"] = pool.tokens[caller]
    elif caller == "junk":
        headers["X-Auth-Token"] = draw(HEADER_TEXT | st.sampled_from(["", "gAAAAA" + "x" * 300]))
    kind = draw(st.integers(0, 9))
    if kind == 0:
        headers["Content-Type"] = draw(HEADER_TEXT)
    elif kind < 3:
        headers["Content-Type"] = draw(st.sampled_from(_CONTENT_TYPES))
    else:
        headers["Content-Type"] = fitting
    if not draw(st.integers(0, 3)):
        first = draw(st.integers(-5, 200) | st.none())
        last = draw(st.integers(-5, 200) | st.none())
        spec = f"bytes={'' if first is None else first}-{'' if last is None else last}"
        headers["Range"] = draw(st.sampled_from([spec, spec, spec + ",0-1"]) | HEADER_TEXT)
    if not draw(st.integers(0, 4)):
        digest = hashlib.md5(DATA, usedforsecurity=False)
        headers["Content-MD5"] = draw(
            st.sampled_from([digest.hexdigest(), base64.b64encode(digest.digest()).decode()])
            | st.binary(min_size=16, max_size=16).map(lambda b: b.hex())
            | HEADER_TEXT
        )
    if not draw(st.integers(0, 4)):
        headers["X-OpenStack-Request-ID"] = draw(
            HEADER_TEXT | st.just("req-00000000-0000-0000-0000-000000000000")
        )
    if not draw(st.integers(0, 4)):
        # Errors are negotiated (HTML, JSON or plain text): any Accept, even junk.
        headers["Accept"] = draw(st.sampled_from(_ACCEPTS) | HEADER_TEXT)
    return headers


_RAW_BODIES = st.one_of(
    st.binary(max_size=200),
    st.sampled_from(
        [
            b"{",
            b"[",
            b'[{"op":',
            b"nul",
            b"{}garbage",
            b'{"name": 1, "name": 2}',
            b"\xef\xbb\xbf{}",
            b"NaN",
            b"-Infinity",
            b'"\\u0000"',
            b'["\\ud800"]',
            '{"x": 1}'.encode("utf-16"),
            b"[" * 200 + b"]" * 200,
            b'{"min_disk": ' + b"9" * 5000 + b"}",
        ]
    ),
    st.text(alphabet=PRINTABLE, max_size=80).map(str.encode),
)
#: Bodies for image data: bytes, and disk formats the inspector knows.
_DATA_BODIES = st.one_of(
    st.binary(max_size=300),
    st.sampled_from([DATA, b"", _qcow2(), _qcow2(backing_offset=512), b"KDMV" + b"\0" * 600]),
)


def _body(draw: st.DrawFn, pool: Pool, template: str, method: str) -> tuple[bytes | None, str]:
    """Return a body for *method* on *template*, and the media type that fits it."""
    if method not in ("POST", "PUT", "PATCH") and draw(st.integers(0, 3)):
        return None, "application/json"
    if template.endswith("/file"):
        kinds = ["data", "data", "data", "raw", "json", "none"]
    elif template == "/v2/images":
        kinds = ["create", "create", "create", "json", "patch", "raw", "none"]
    elif template.endswith("/members") or template.endswith("/members/{member_id}"):
        kinds = ["member", "member", "member", "json", "raw", "none"]
    elif template == "/v2/images/{image_id}":
        kinds = ["patch"] * 6 + ["json", "raw", "none"]
    else:
        kinds = ["json", "patch", "raw", "none", "none"]
    kind = draw(st.sampled_from(kinds))
    if method == "PATCH":
        fitting = draw(st.sampled_from(PATCH_TYPES))
    elif kind == "data":
        fitting = OCTET
    else:
        fitting = "application/json"
    if kind == "none":
        return None, fitting
    if kind == "data":
        return draw(_DATA_BODIES), fitting
    if kind == "raw":
        return draw(_RAW_BODIES), fitting
    if kind == "create":
        document = draw(create_document())
    elif kind == "patch":
        document = draw(patch_document())
    elif kind == "member":
        document = draw(member_document(pool.project_ids()))
    else:
        document = draw(JSON)
    return json.dumps(document, ensure_ascii=draw(st.booleans())).encode(), fitting


# == Checks ===================================================================


def _check_page(result: Any, method: str, request: str) -> None:
    """Check an error page webob sends as HTML or plain text: the status line in it."""
    assert result.status_code < 500 and result.headers["content-type"] in PAGE_TYPES, request
    assert result.headers.get("x-openstack-request-id", "").startswith("req-"), request
    if method != "HEAD":
        assert result.status in result.text, (request, result.text)


def check_response(result: Any, method: str, request: str, caplog: Any) -> None:
    """Assert no 5xx, a request id, and Glance's error for every 4xx, as the request accepts."""
    if result.headers.get("content-type") in PAGE_TYPES:
        _check_page(result, method, request)
        return
    body = error_document(result, method, request, caplog)
    if body is None:
        return
    if result.status_code == 401:
        assert set(body) == {"error"} and body["error"]["code"] == 401, (request, body)
        return
    assert isinstance(body, dict) and set(body) == {"message", "code", "title"}, (request, body)
    assert isinstance(body["title"], str) and body["title"].strip(), (request, body)
    assert body["code"] == result.status == f"{result.status_code} {body['title']}", (request, body)
    assert isinstance(body["message"], str) and body["message"].strip(), (request, body)


def _send(
    images: ImageAPI,
    caplog: pytest.LogCaptureFixture,
    method: str,
    path: str,
    *,
    headers: dict[str, str],
    body: bytes | None = None,
    query_string: str = "",
) -> Any:
    """Send one request under the image mount and check the answer."""
    url = MOUNT + path
    request = describe(method, url, query_string, headers, body)
    caplog.clear()

    result = images.client.simulate_request(
        method, url, query_string=query_string, headers=headers, body=body
    )

    check_response(result, method, request, caplog)
    return result


# == The fuzz =================================================================


#: Writes first, so that reads find something; deletes last.
_METHOD_ORDER = ("POST", "PUT", "PATCH", "GET", "HEAD", "OPTIONS", "DELETE")


def _valid_requests(
    pool: Pool, template: str, methods: tuple[str, ...]
) -> list[tuple[str, str, dict[str, str], bytes | None]]:
    """Return what a client would send to each method of *template*, as the member.

    (method, path, headers, body) each.  Random examples reach success
    paths only now and then; these make sure each is taken once.
    """
    other = pool.other.project["id"]
    image_id = pool.ids["member_shared" if "/members" in template else "member_queued"]
    path = template.format(
        image_id=image_id,
        store_id="file",
        tag="t",
        namespace="ns",
        name="n",
        member_id=other,
        task_id=image_id,
    )
    member = pool.tokens["member"]
    bodies: dict[tuple[str, str], tuple[str, str, Any]] = {
        ("/v2/images", "POST"): (member, "application/json", _CREATE_BASE),
        ("/v2/images/{image_id}", "PATCH"): (
            member,
            PATCH_TYPES[0],
            [{"op": "replace", "path": "/name", "value": "n"}],
        ),
        ("/v2/images/{image_id}/file", "PUT"): (member, OCTET, DATA),
        ("/v2/images/{image_id}/stage", "PUT"): (member, OCTET, DATA),
        ("/v2/images/{image_id}/import", "POST"): (
            member,
            "application/json",
            {"method": {"name": "glance-direct"}},
        ),
        ("/v2/tasks", "POST"): (
            pool.tokens["member"],
            "application/json",
            {
                "type": "import",
                "input": {
                    "import_from": "http://does-not.exist/x",
                    "import_from_format": "raw",
                    "image_properties": {"disk_format": "raw", "container_format": "bare"},
                },
            },
        ),
        ("/v2/images/{image_id}/members", "POST"): (
            member,
            "application/json",
            {"member": str(uuid.UUID(int=1))},
        ),
        ("/v2/images/{image_id}/members/{member_id}", "PUT"): (
            pool.tokens["other"],
            "application/json",
            {"status": "accepted"},
        ),
    }
    requests = []
    for method in sorted(methods, key=_METHOD_ORDER.index):
        token, content_type, document = bodies.get((template, method), (member, "", None))
        headers = {"X-Auth-Token": token}
        body: bytes | None = None
        if document is not None:
            headers["Content-Type"] = content_type
            body = document if isinstance(document, bytes) else json.dumps(document).encode()
        requests.append((method, path, headers, body))
    return requests


@pytest.mark.parametrize(("template", "methods"), ROUTES, ids=[template for template, _ in ROUTES])
def test_route_never_fails(
    images: ImageAPI,
    pool: Pool,
    caplog: pytest.LogCaptureFixture,
    template: str,
    methods: tuple[str, ...],
) -> None:
    params = re.findall(r"{(\w+)}", template)
    # Methods that take a body have the most input to get wrong: send them more.
    weighted = [m for m in methods for _ in range(3 if m in ("POST", "PUT", "PATCH") else 1)]
    sent: set[str] = set()

    for method, path, headers, body in _valid_requests(pool, template, methods):
        _send(images, caplog, method, "" if path == "/" else path, headers=headers, body=body)
    # Every other method once, so that each is sent whatever the examples draw.
    url = "" if template == "/" else template.format(**{p: pool.ids["queued"] for p in params})
    for method in HTTP_METHODS:
        if method not in methods:
            _send(images, caplog, method, url, headers={"X-Auth-Token": images.admin_token})

    @SETTINGS
    @given(st.data())
    def exercise(data: st.DataObject) -> None:
        pool.refresh()
        draw = data.draw
        if methods and draw(st.integers(0, 4)):
            method = draw(st.sampled_from(weighted))
        else:
            method = draw(st.sampled_from(HTTP_METHODS))
        path = MOUNT + ("" if template == "/" else template)
        for param in params:
            path = path.replace(f"{{{param}}}", _path_value(draw, pool, param), 1)
        query_string = _query(draw, pool)
        body, fitting = _body(draw, pool, template, method)
        headers = _headers(draw, pool, fitting)
        request = describe(method, path, query_string, headers, body)
        caplog.clear()

        result = images.client.simulate_request(
            method, path, query_string=query_string, headers=headers, body=body
        )

        sent.add(method)
        check_response(result, method, request, caplog)

    exercise()
    assert set(methods) <= sent


# == Focused fuzz of the richest inputs ==========================================

#: Pool images the member may change, and ones it may only see or not see at all.
_PATCH_TARGETS = ["queued", "active", "member_queued", "member_active", "shared_with_member"]


def test_patches_never_fail(images: ImageAPI, pool: Pool, caplog: pytest.LogCaptureFixture) -> None:
    """JSON patches of every shape, on images in every state, as the admin and a member."""

    @FOCUSED
    @given(
        document=patch_document(),
        target=st.sampled_from(_PATCH_TARGETS),
        caller=st.sampled_from(["admin", "member", "domain"]),
        content_type=st.sampled_from(PATCH_TYPES),
    )
    def exercise(document: Any, target: str, caller: str, content_type: str) -> None:
        pool.refresh()
        image_id = pool.ids[target]
        headers = {"X-Auth-Token": pool.tokens[caller], "Content-Type": content_type}

        result = _send(
            images,
            caplog,
            "PATCH",
            f"/v2/images/{image_id}",
            headers=headers,
            body=json.dumps(document).encode(),
        )

        if result.status_code == 200:
            # What the patch answered is what a later read shows.
            assert images.show(image_id) == {**result.json, "updated_at": ANY}

    exercise()


def test_creates_never_fail(images: ImageAPI, pool: Pool, caplog: pytest.LogCaptureFixture) -> None:
    """Create bodies near a valid one, as the admin and a member."""

    @FOCUSED
    @given(document=create_document(), caller=st.sampled_from(["admin", "member", "domain"]))
    def exercise(document: Any, caller: str) -> None:
        headers = {"X-Auth-Token": pool.tokens[caller], "Content-Type": "application/json"}

        result = _send(
            images,
            caplog,
            "POST",
            "/v2/images",
            headers=headers,
            body=json.dumps(document).encode(),
        )

        if result.status_code == 201:
            assert images.show(result.json["id"]) == result.json

    exercise()


def test_list_queries_never_fail(
    images: ImageAPI, pool: Pool, caplog: pytest.LogCaptureFixture
) -> None:
    """Every list filter with random values, repeated keys included, and paging links."""

    @FOCUSED
    @given(data=st.data(), caller=st.sampled_from(["admin", "member", "other", "domain"]))
    def exercise(data: st.DataObject, caller: str) -> None:
        headers = {"X-Auth-Token": pool.tokens[caller]}
        query_string = _query(data.draw, pool)

        result = _send(
            images, caplog, "GET", "/v2/images", headers=headers, query_string=query_string
        )

        if result.status_code == 200 and "next" in result.json:
            path, _, rest = result.json["next"].partition("?")
            _send(images, caplog, "GET", path, headers=headers, query_string=rest)

    exercise()


def test_uploads_never_fail(
    images: ImageAPI, services: Any, pool: Pool, caplog: pytest.LogCaptureFixture
) -> None:
    """Uploads of random data with random checksums and lengths, to fresh images."""

    @FOCUSED
    @given(
        data=_DATA_BODIES,
        disk_format=st.sampled_from(["raw", "qcow2", "vmdk", "iso", "vhd", None]),
        declared=st.sampled_from(["none", "right", "wrong", "junk"]),
        # The simulator checks the WSGI environ: the length must be a number.
        length=st.sampled_from(["exact", "shorter", "longer", "zero"]),
        md5=st.sampled_from(["none", "right", "wrong", "junk"]),
        caller=st.sampled_from(["admin", "member"]),
    )
    def exercise(
        data: bytes, disk_format: str | None, declared: str, length: str, md5: str, caller: str
    ) -> None:
        digest = hashlib.sha256(data if declared == "right" else b"other").hexdigest()
        attrs: dict[str, Any] = {"disk_format": disk_format, "owner": pool.member.project["id"]}
        if declared != "none":
            attrs["owner_specified.openstack.sha256"] = "zz" if declared == "junk" else digest
        image = images.create(**attrs)
        headers = {"X-Auth-Token": pool.tokens[caller], "Content-Type": OCTET}
        headers["Content-Length"] = {
            "exact": str(len(data)),
            "shorter": str(max(len(data) - 1, 0)),
            "longer": str(len(data) + 7),
            "zero": "0",
        }[length]
        if md5 != "none":
            checksum = hashlib.md5(data if md5 == "right" else b"x", usedforsecurity=False)
            headers["Content-MD5"] = "zz" if md5 == "junk" else checksum.hexdigest()

        result = _send(
            images, caplog, "PUT", f"/v2/images/{image['id']}/file", headers=headers, body=data
        )

        after = images.show(image["id"])
        if result.status_code == 204:
            assert after["status"] == "active"
            assert images.download(image["id"]).content == data[: after["size"]]
        else:
            assert after["status"] == "queued", (result.status, after)
            assert image["id"] not in images.stored_files()

    exercise()


# == Every attribute, every operation =========================================

#: Values wrong for most attributes, tried on each of them.
_EDGE_VALUES: list[Any] = [None, "", "x" * 256, -1, 2**31, 2**63, 1.5, True, [], {}, ["x"]]


def test_every_single_attribute_patch_never_fails(
    images: ImageAPI, pool: Pool, caplog: pytest.LogCaptureFixture
) -> None:
    """Each operation on each attribute the schema knows, with each value that fits it.

    A grid rather than random draws: small enough to send whole, and it
    does not depend on a draw hitting the one combination that breaks.
    Failures are collected, so that one run lists them all.
    """
    failures = []
    for name in _WRITABLE + _UNTOUCHABLE:
        for op in ("add", "replace", "remove"):
            values = [None] if op == "remove" else [*_fitting_values(name), *_EDGE_VALUES]
            for value in values:
                for target, caller in (("queued", "admin"), ("member_active", "member")):
                    pool.refresh()
                    headers = {"X-Auth-Token": pool.tokens[caller], "Content-Type": PATCH_TYPES[0]}
                    body = json.dumps([{"op": op, "path": f"/{name}", "value": value}]).encode()
                    try:
                        _send(
                            images,
                            caplog,
                            "PATCH",
                            f"/v2/images/{pool.ids[target]}",
                            headers=headers,
                            body=body,
                        )
                    except AssertionError as ex:
                        failures.append(str(ex).split("server log:")[0])
    assert not failures, f"{len(failures)} failed:\n" + "\n".join(failures)


def test_every_single_attribute_create_never_fails(
    images: ImageAPI, pool: Pool, caplog: pytest.LogCaptureFixture
) -> None:
    """Each attribute the schema knows, with each value that fits it, in a create."""
    failures = []
    for name in _WRITABLE + _UNTOUCHABLE:
        for value in [*_fitting_values(name), *_EDGE_VALUES]:
            for caller in ("admin", "member"):
                headers = {"X-Auth-Token": pool.tokens[caller], "Content-Type": "application/json"}
                body = json.dumps({**_CREATE_BASE, name: value}).encode()
                try:
                    _send(images, caplog, "POST", "/v2/images", headers=headers, body=body)
                except AssertionError as ex:
                    failures.append(str(ex).split("server log:")[0])
    assert not failures, f"{len(failures)} failed:\n" + "\n".join(failures)
