"""The image API's answers to bad input, bad callers and broken uploads.

Every error must be a 4xx in Glance's shape with an ``x-openstack-request-id``
header: for these requests, which name no ``Accept``, the JSON webob sends,
``{"message", "code": "404 Not Found", "title": "Not Found"}`` (a 401 is
keystonemiddleware's, Keystone's ``{"error": {...}}``).  The HTML page and
the plain text a client may ask for instead are checked in
``tests/unit/api/image/test_images.py`` and
``tests/functional/test_glance_client.py``.  Each test also checks that the
refused request changed nothing: the image is still there, still
``queued``, holds no new property, and the store's directory holds no data.
The whole app runs in-process on SQLite (see ``conftest.py`` here and one
level up).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import struct
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import falcon.testing
import pytest

import nimbus.wsgi
from nimbus.api.app import Links
from nimbus.api.image import routes
from nimbus.image import schema

if TYPE_CHECKING:
    from tests.functional.api.conftest import Member
    from tests.functional.api.image.conftest import ImageAPI

HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
PATCH_TYPES = (
    "application/openstack-images-v2.1-json-patch",
    "application/openstack-images-v2.0-json-patch",
)
OCTET = "application/octet-stream"
DATA = b"0123456789"


def _route_table(services: Any) -> list[tuple[str, tuple[str, ...]]]:
    """Return (template, methods answered) for every image route, from the route table."""
    table = routes.routes(
        services.image, services.image_data, services.image_tasks, Links(None, "/image")
    )
    return [
        (template, tuple(m for m in HTTP_METHODS if hasattr(resource, f"on_{m.lower()}")))
        for template, resource in table
    ]


def _patch_op(op: str, path: Any, value: Any = None) -> dict[str, Any]:
    return {"op": op, "path": path} if op == "remove" else {"op": op, "path": path, "value": value}


def _qcow2(virtual_size: int = 1 << 30, *, backing_offset: int = 0) -> bytes:
    """Return a qcow2 (v3) header padded to its first 64 KiB cluster."""
    header = struct.pack(
        ">4sIQIIQIIQQIIQ", b"QFI\xfb", 3, backing_offset, 0, 16, virtual_size, 0, 0, 0, 0, 0, 0, 0
    )
    header += struct.pack(">QQQII", 0, 0, 0, 4, 104)
    return header.ljust(64 * 1024, b"\0")


def _assert_untouched(
    images: ImageAPI, image_id: str, before: dict[str, Any], *, uploaded: bool = False
) -> None:
    """Check an image is exactly as it was, and that a queued one has no data.

    :param uploaded: an upload was tried: a failed one goes ``queued`` ->
        ``saving`` -> ``queued``, which moves ``updated_at`` and nothing else.
    """
    after = images.show(image_id)
    if uploaded:
        after["updated_at"] = before["updated_at"]
    assert after == before
    if before["status"] == "queued":
        assert image_id not in images.stored_files()


@pytest.fixture
def queued(images: ImageAPI) -> dict[str, Any]:
    """A queued image with one custom property (``foo``) and one tag (``t``)."""
    return images.create(foo="bar", tags=["t"])


# == Create: request bodies ===================================================

#: Bodies that are not JSON at all, by what is wrong with them.
MALFORMED = {
    "open-brace": b"{",
    "no-value": b'{"name": }',
    "single-quotes": b"{'name': 'n'}",
    "trailing": b'{"name": "n"} trailing',
    "trailing-comma": b'{"name": "n",}',
    "binary": b"\xff\xfe\x00garbage",
    "bad-utf8": b'{"name": "\xc3\x28"}',
    "nan": b"NaN",
    "infinity": b'{"min_disk": Infinity}',
    "nested-past-the-limit": b'{"name": ' + b"[" * 40 + b"]" * 40 + b"}",
    "nested-past-recursion": b'{"name": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
    "huge-integer": b'{"min_disk": ' + b"7" * 5000 + b"}",
}


def _assert_all_errors(
    images: ImageAPI, code: int, results: dict[str, tuple[falcon.testing.Result, str]]
) -> None:
    """Check every result is a Glance error *code* whose message holds the word paired with it.

    :param results: case label to (response, a word the message must hold, or "").
    """
    wrong = []
    for label, (result, word) in results.items():
        try:
            message = images.assert_error(result, code)
            assert word in message, f"{word!r} not in {message!r}"
        except AssertionError as ex:
            wrong.append(f"{label}: {ex}")
    assert not wrong, "\n".join(wrong)


def _creates(images: ImageAPI, documents: dict[str, tuple[Any, str]]) -> None:
    """POST each document and expect 400 naming the field; no image may appear."""
    before = images.ids()

    results = {
        label: (images.request("POST", "/images", document), word)
        for label, (document, word) in documents.items()
    }

    _assert_all_errors(images, 400, results)
    assert images.ids() == before


def test_malformed_json_on_create_is_a_bad_request(images: ImageAPI) -> None:
    before = images.ids()

    results = {
        label: (images.request("POST", "/images", raw=raw, content_type="application/json"), "")
        for label, raw in MALFORMED.items()
    }

    _assert_all_errors(images, 400, results)
    assert images.ids() == before


@pytest.mark.parametrize(
    "document",
    [[], [{"name": "n"}], "image", 42, 4.5, True, None],
    ids=["empty-list", "list", "string", "int", "float", "bool", "null"],
)
def test_a_create_body_that_is_not_an_object_is_refused(images: ImageAPI, document: Any) -> None:
    before = images.ids()

    result = images.request("POST", "/images", document)

    message = images.assert_error(result, 400)
    assert "object" in message
    assert images.ids() == before


def test_an_empty_create_body_is_refused(images: ImageAPI) -> None:
    result = images.request("POST", "/images", raw=b"", content_type="application/json")

    images.assert_error(result, 400)


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/xml", "application/x-www-form-urlencoded"]
)
def test_a_create_body_that_is_not_json_is_unsupported(images: ImageAPI, content_type: str) -> None:
    before = images.ids()

    result = images.request("POST", "/images", raw=b'{"name": "n"}', content_type=content_type)

    images.assert_error(result, 415)
    assert images.ids() == before


def test_unknown_formats_are_refused(images: ImageAPI) -> None:
    _creates(
        images,
        {
            f"{field}={value!r}": ({"name": "n", field: value}, field)
            for field, value in [
                ("disk_format", "bogus"),
                ("disk_format", "RAW"),
                ("disk_format", ""),
                ("disk_format", 1),
                ("disk_format", ["raw"]),
                ("container_format", "bogus"),
                ("container_format", "BARE"),
                ("container_format", ""),
                ("container_format", True),
            ]
        },
    )


def test_minimums_must_be_small_non_negative_integers(images: ImageAPI) -> None:
    values = [-1, -(2**63), 2**31, 2**63, 10**30, "1", "", 1.5, True, [], {}]
    _creates(
        images,
        {
            f"{field}={value!r}": ({"name": "n", field: value}, field)
            for field in ("min_disk", "min_ram")
            for value in values
        },
    )


@pytest.mark.parametrize("field", ["min_disk", "min_ram"])
def test_a_minimum_written_as_a_float_is_never_echoed_as_one(images: ImageAPI, field: str) -> None:
    """JSON ``1000.0`` passes jsonschema's "integer"; refuse it, or answer the integer.

    The schema served at ``/v2/schemas/image`` says ``integer``: a client
    must not get ``1000.0`` back from the create (a later GET says ``1000``).
    """
    before = images.ids()

    result = images.request("POST", "/images", {"name": "n", field: 1e3})

    if result.status_code == 201:
        assert type(result.json[field]) is int, result.json[field]
        assert images.show(result.json["id"])[field] == 1000
    else:
        images.assert_error(result, 400)
        assert images.ids() == before
    patched = images.patch(images.create()["id"], [_patch_op("replace", f"/{field}", 2.0)])
    if patched.status_code == 200:
        assert type(patched.json[field]) is int, patched.json[field]
    else:
        images.assert_error(patched, 400)


def test_a_bad_name_is_refused(images: ImageAPI) -> None:
    names: list[Any] = ["x" * 256, "é" * 256, "x" * 70_000, 1, ["n"], {"n": "n"}]
    _creates(images, {repr(name)[:20]: ({"name": name}, "name") for name in names})


def test_a_name_of_255_characters_is_fine(images: ImageAPI) -> None:
    assert images.create(name="é" * 255)["name"] == "é" * 255


def test_custom_property_values_must_be_strings(images: ImageAPI) -> None:
    values: list[Any] = [1, 0, 1.5, True, False, [], ["a"], {}, {"a": "b"}, "x" * 65536]
    _creates(
        images,
        {
            repr(value)[:20]: ({"name": "n", "hw_disk_bus": value}, "hw_disk_bus")
            for value in values
        },
    )


def test_a_bad_property_name_is_refused(images: ImageAPI) -> None:
    _creates(images, {repr(name)[:20]: ({"name": "n", name: "v"}, "") for name in ("", "x" * 256)})


def test_core_attributes_of_the_wrong_form_are_refused(images: ImageAPI) -> None:
    _creates(
        images,
        {
            f"{field}={value!r}"[:40]: ({"name": "n", field: value}, field)
            for field, value in [
                ("visibility", "bogus"),
                ("visibility", "Public"),
                ("protected", "yes"),
                ("os_hidden", 1),
                ("tags", "t"),
                ("tags", [1]),
                ("tags", ["x" * 256]),
                ("kernel_id", "not-a-uuid"),
                ("owner", "x" * 256),
            ]
        },
    )


@pytest.mark.parametrize(
    "fields",
    [sorted(schema.READ_ONLY - {"id"}), sorted(schema.RESERVED)],
    ids=["read-only", "reserved"],
)
def test_protected_attributes_cannot_be_set_on_create(images: ImageAPI, fields: list[str]) -> None:
    """``id`` may be chosen; ``status``, ``checksum``... and ``location``, ``deleted``... not."""
    before = images.ids()

    results = {
        field: (images.request("POST", "/images", {"name": "n", field: "x"}), field)
        for field in fields
    }

    _assert_all_errors(images, 403, results)
    assert images.ids() == before


def test_an_id_may_be_chosen_once(images: ImageAPI) -> None:
    image_id = str(uuid.uuid4())
    assert images.create(id=image_id)["id"] == image_id

    result = images.request("POST", "/images", {"id": image_id, "name": "again"})

    images.assert_error(result, 409)
    assert images.show(image_id)["name"] == "img"


def test_a_malformed_id_is_refused(images: ImageAPI) -> None:
    ids: list[Any] = ["not-a-uuid", "", "../etc", str(uuid.uuid4()) + "0", 1, ["x"]]
    ids += [str(uuid.uuid4()) + "\n", "\n" + str(uuid.uuid4())]
    _creates(images, {repr(image_id): ({"id": image_id}, "id") for image_id in ids})


def test_a_member_cannot_create_an_image_for_another_project(
    images: ImageAPI, alice: Member, bob: Member
) -> None:
    before = images.ids()

    result = images.request("POST", "/images", {"owner": bob.project["id"]}, token=alice.token)

    images.assert_error(result, 403)
    assert images.ids() == before


# == PATCH ===================================================================


def test_malformed_json_on_patch_is_a_bad_request(images: ImageAPI, queued: dict[str, Any]) -> None:
    path = f"/images/{queued['id']}"

    results = {
        label: (images.request("PATCH", path, raw=raw, content_type=PATCH_TYPES[0]), "")
        for label, raw in MALFORMED.items()
    }

    _assert_all_errors(images, 400, results)
    _assert_untouched(images, queued["id"], queued)


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/json; charset=utf-8",
        "application/json-patch+json",
        "application/merge-patch+json",
        "text/plain",
        "application/xml",
        "application/octet-stream",
        "application/openstack-images-v2.2-json-patch",
        None,
    ],
)
def test_patch_needs_the_json_patch_media_type(
    images: ImageAPI, queued: dict[str, Any], content_type: str | None
) -> None:
    """Glance answers 415 with ``Accept-Patch`` naming the media types it takes."""
    body = json.dumps([_patch_op("replace", "/name", "changed")])
    headers = {"X-Auth-Token": images.admin_token}
    if content_type is not None:
        headers["Content-Type"] = content_type

    result = images.client.simulate_patch(
        f"/image/v2/images/{queued['id']}", headers=headers, body=body
    )

    images.assert_error(result, 415)
    accepted = [t.strip() for t in result.headers.get("accept-patch", "").split(",")]
    assert set(accepted) == set(PATCH_TYPES), result.headers
    _assert_untouched(images, queued["id"], queued)


@pytest.mark.parametrize(
    ("content_type", "operations"),
    [
        (PATCH_TYPES[0], [_patch_op("replace", "/name", "changed"), _patch_op("remove", "/p")]),
        # The older type names each operation by its key, as Glance's v2.0 patches.
        (PATCH_TYPES[1], [{"replace": "/name", "value": "changed"}, {"remove": "/p"}]),
    ],
    ids=["v2.1", "v2.0"],
)
def test_both_patch_media_types_are_taken(
    images: ImageAPI, content_type: str, operations: list[dict[str, Any]]
) -> None:
    image = images.create(p="x")

    result = images.patch(image["id"], operations, content_type=content_type)

    assert result.status_code == 200, result.text
    assert result.json["name"] == "changed"
    assert "p" not in result.json


def test_a_v2_0_operation_names_exactly_one_op(images: ImageAPI, queued: dict[str, Any]) -> None:
    for operation in ({"value": "x"}, {"add": "/a", "replace": "/a", "value": "x"}):
        result = images.patch(queued["id"], [operation], content_type=PATCH_TYPES[1])
        images.assert_error(result, 400)
    assert images.show(queued["id"]) == queued


def _patches(
    images: ImageAPI, image: dict[str, Any], code: int, documents: dict[str, tuple[Any, str]]
) -> None:
    """PATCH each document to *image*, expect *code* naming the word paired with it, and no change.

    :param documents: case label to (patch document, a word the message must hold, or "").
    """
    results = {
        label: (images.patch(image["id"], document), word)
        for label, (document, word) in documents.items()
    }

    _assert_all_errors(images, code, results)
    _assert_untouched(images, image["id"], image)


def test_a_patch_body_must_be_a_list(images: ImageAPI, queued: dict[str, Any]) -> None:
    documents: list[Any] = [{}, {"op": "replace", "path": "/name", "value": "n"}, "ops", 1, True]
    _patches(images, queued, 400, {repr(d)[:30]: (d, "") for d in [*documents, None]})
    empty = images.request("PATCH", f"/images/{queued['id']}", raw=b"", content_type=PATCH_TYPES[0])
    images.assert_error(empty, 400)


def test_unknown_patch_operations_are_refused(images: ImageAPI, queued: dict[str, Any]) -> None:
    operations: list[Any] = [
        {"op": "move", "from": "/foo", "path": "/bar"},
        {"op": "test", "path": "/name", "value": "img"},
        {"op": "copy", "from": "/foo", "path": "/bar"},
        {"op": "move", "path": "/name", "value": "n"},
        {"op": "ADD", "path": "/bar", "value": "v"},
        {"op": "", "path": "/bar", "value": "v"},
        {"op": None, "path": "/bar", "value": "v"},
        {"op": ["add"], "path": "/bar", "value": "v"},
        {"path": "/bar", "value": "v"},
        "add",
        ["add", "/bar", "v"],
        None,
    ]
    _patches(images, queued, 400, {json.dumps(o)[:40]: ([o], "") for o in operations})


def test_add_and_replace_need_a_value(images: ImageAPI, queued: dict[str, Any]) -> None:
    _patches(
        images,
        queued,
        400,
        {
            f"{op} {path}": ([{"op": op, "path": path}], "value")
            for op in ("add", "replace")
            for path in ("/name", "/bar", "/foo")
        },
    )


def test_unexpected_members_of_an_operation_are_refused(
    images: ImageAPI, queued: dict[str, Any]
) -> None:
    operations = {
        "add-from": {"op": "add", "path": "/bar", "value": "v", "from": "/foo"},
        "remove-value": {"op": "remove", "path": "/foo", "value": "bar"},
        "replace-extra": {"op": "replace", "path": "/name", "value": "n", "extra": 1},
    }
    _patches(images, queued, 400, {label: ([o], "") for label, o in operations.items()})


def test_bad_patch_paths_are_refused(images: ImageAPI, queued: dict[str, Any]) -> None:
    paths: list[Any] = [
        "name",
        "",
        "/",
        "/a/b",
        "/name/",
        "//",
        "/foo/0",
        "x" * 300,
        "/" + "x" * 256,
        1,
        None,
        [],
    ]
    documents = {
        f"{op} {path!r}"[:40]: ([_patch_op(op, path, "v")], "")
        for op in ("add", "replace", "remove")
        for path in paths
    }
    documents["no-path"] = ([{"op": "add", "value": "v"}], "")
    _patches(images, queued, 400, documents)


def test_locations_cannot_be_patched(images: ImageAPI, queued: dict[str, Any]) -> None:
    location = {"url": "file:///etc/passwd", "metadata": {}}
    _patches(
        images,
        queued,
        403,
        {
            f"{op} {path}": ([_patch_op(op, path, [] if path == "/locations" else location)], "")
            for op in ("add", "replace", "remove")
            for path in ("/locations", "/locations/-", "/locations/0")
        },
    )


@pytest.mark.parametrize(
    "fields",
    [sorted(schema.READ_ONLY - {"locations"}), sorted(schema.RESERVED)],
    ids=["read-only", "reserved"],
)
def test_protected_attributes_cannot_be_patched(
    images: ImageAPI, queued: dict[str, Any], fields: list[str]
) -> None:
    """``/status``, ``/checksum``, ``/size``... and ``/location``, ``/deleted``...: 403."""
    _patches(
        images,
        queued,
        403,
        {
            f"{op} /{field}": ([_patch_op(op, f"/{field}", "x")], field)
            for op in ("add", "replace", "remove")
            for field in fields
        },
    )


def test_core_attributes_cannot_be_removed(images: ImageAPI, queued: dict[str, Any]) -> None:
    fields = [
        "name",
        "disk_format",
        "container_format",
        "visibility",
        "protected",
        "os_hidden",
        "min_disk",
        "min_ram",
        "tags",
        "owner",
    ]
    _patches(
        images,
        queued,
        403,
        {field: ([_patch_op("remove", f"/{field}")], field) for field in fields},
    )


def test_custom_property_presence_conflicts(images: ImageAPI, queued: dict[str, Any]) -> None:
    """``add`` of a present custom property, ``replace``/``remove`` of a missing one: 409."""
    operations = {
        "add-present": _patch_op("add", "/foo", "other"),
        "replace-missing": _patch_op("replace", "/missing", "v"),
        "remove-missing": _patch_op("remove", "/missing"),
        "replace-missing-base": _patch_op("replace", "/kernel_id", str(uuid.uuid4())),
        "remove-missing-base": _patch_op("remove", "/ramdisk_id"),
    }
    _patches(images, queued, 409, {label: ([o], "") for label, o in operations.items()})


def test_values_of_the_wrong_form_are_refused(images: ImageAPI, queued: dict[str, Any]) -> None:
    wrong: list[tuple[str, Any]] = [
        ("name", "x" * 256),
        ("name", 1),
        ("min_ram", -1),
        ("min_ram", None),
        ("min_disk", 2**31),
        ("min_disk", "1"),
        ("visibility", "bogus"),
        ("visibility", None),
        ("protected", "yes"),
        ("protected", None),
        ("os_hidden", None),
        ("tags", "t"),
        ("tags", None),
        ("tags", [1]),
        ("tags", ["x" * 256]),
        ("disk_format", "bogus"),
        ("container_format", "bogus"),
        ("foo", 1),
        ("foo", None),
        ("foo", ["a"]),
        ("foo", "x" * 65536),
        ("kernel_id", "not-a-uuid"),
    ]
    # "replace" of a present attribute, "add" of an absent one: only the value is wrong.
    _patches(
        images,
        queued,
        400,
        {
            f"{field}={value!r}"[:40]: (
                [_patch_op("replace" if field in queued else "add", f"/{field}", value)],
                field,
            )
            for field, value in wrong
        },
    )


@pytest.mark.parametrize("op", ["add", "replace"])
@pytest.mark.parametrize("field", ["kernel_id", "ramdisk_id"])
def test_a_null_optional_base_property_is_never_a_server_error(
    images: ImageAPI, field: str, op: str
) -> None:
    """``kernel_id`` and ``ramdisk_id`` may be null by the schema: add or replace one with null.

    Glance stores the null; nimbus may as well refuse it with 400, but the
    row must not hit the ``NOT NULL`` constraint of ``image_properties.value``
    (the INSERT of an ``add``, the UPDATE of a ``replace``).
    """
    present = {field: str(uuid.uuid4())} if op == "replace" else {}
    image = images.create(**present)

    result = images.patch(image["id"], [_patch_op(op, f"/{field}", None)])

    if result.status_code == 200:
        assert images.show(image["id"]).get(field) is None
    else:
        images.assert_error(result, 400)
        _assert_untouched(images, image["id"], image)


def test_a_failing_operation_undoes_the_whole_patch(
    images: ImageAPI, queued: dict[str, Any]
) -> None:
    changes = [
        _patch_op("replace", "/name", "changed"),
        _patch_op("add", "/bar", "new"),
        _patch_op("add", "/tags", ["t", "u"]),
        _patch_op("add", "/foo", "conflicts"),
    ]

    result = images.patch(queued["id"], changes)

    images.assert_error(result, 409)
    _assert_untouched(images, queued["id"], queued)


@pytest.mark.parametrize(
    ("field", "value"), [("disk_format", "qcow2"), ("container_format", "ovf")]
)
def test_formats_are_fixed_once_data_is_uploaded(images: ImageAPI, field: str, value: str) -> None:
    image_id = images.active(DATA)
    before = images.show(image_id)

    result = images.patch(image_id, [_patch_op("replace", f"/{field}", value)])

    message = images.assert_error(result, 403)
    assert field in message
    _assert_untouched(images, image_id, before)
    same = images.patch(image_id, [_patch_op("replace", f"/{field}", before[field])])
    assert same.status_code == 200, same.text


def test_only_admins_change_an_owner(
    images: ImageAPI, alice: Member, bob: Member, image_of: Callable[..., dict[str, Any]]
) -> None:
    image = image_of(alice, visibility="private")

    result = images.patch(
        image["id"], [_patch_op("replace", "/owner", bob.project["id"])], token=alice.token
    )

    images.assert_error(result, 403)
    _assert_untouched(images, image["id"], image)


# == Unknown ids, unknown paths and methods ==================================

UNKNOWN_IDS = [
    str(uuid.uuid4()),
    uuid.uuid4().hex,
    "not-a-uuid",
    "0",
    "x" * 300,
    "%C3%A9t%C3%A9",
    "%F0%9F%98%80",
    "..",
    "%2e%2e",
]


def _valid_request(template: str, method: str, member_id: str) -> dict[str, Any]:
    """Return the keyword arguments of :meth:`ImageAPI.request` for a well-formed call."""
    if method == "PATCH":
        return {
            "raw": json.dumps([_patch_op("replace", "/name", "n")]),
            "content_type": PATCH_TYPES[0],
        }
    if template.endswith(("/file", "/stage")) and method == "PUT":
        return {"raw": DATA, "content_type": OCTET}
    if template.endswith("/import") and method == "POST":
        return {"body": {"method": {"name": "glance-direct"}}}
    if template.endswith("/members") and method == "POST":
        return {"body": {"member": member_id}}
    if template.endswith("/members/{member_id}") and method == "PUT":
        return {"body": {"status": "accepted"}}
    return {}


def test_every_image_route_answers_404_for_unknown_images(
    images: ImageAPI, services: Any, alice: Member
) -> None:
    requests = [
        (template, method)
        for template, methods in _route_table(services)
        if "{image_id}" in template
        for method in methods
    ]
    assert len(requests) >= 14
    wrong = []
    for template, method in requests:
        for unknown in UNKNOWN_IDS:
            path = template.format(
                image_id=unknown,
                store_id="file",
                tag="t",
                namespace="ns",
                name="n",
                member_id=alice.project["id"],
            )
            kwargs = _valid_request(template, method, alice.project["id"])

            result = images.request(method, path[len("/v2") :], **kwargs)

            try:
                images.assert_error(result, 404)
            except AssertionError as ex:
                wrong.append(f"{method} {template} with {unknown[:40]!r}: {ex}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_an_unknown_member_is_not_found(
    images: ImageAPI, alice: Member, bob: Member, method: str
) -> None:
    image = images.create(visibility="shared")
    images.add_member(image["id"], alice.project["id"])
    kwargs = _valid_request("/members/{member_id}", method, "")

    result = images.request(method, f"/images/{image['id']}/members/{bob.project['id']}", **kwargs)

    images.assert_error(result, 404)
    members = images.request("GET", f"/images/{image['id']}/members").json["members"]
    assert [m["member_id"] for m in members] == [alice.project["id"]]


def test_removing_an_absent_tag_is_not_found(images: ImageAPI, queued: dict[str, Any]) -> None:
    result = images.request("DELETE", f"/images/{queued['id']}/tags/absent")

    images.assert_error(result, 404)
    _assert_untouched(images, queued["id"], queued)


@pytest.mark.parametrize("tag", ["x" * 256, quote("é" * 256)], ids=["ascii", "unicode"])
def test_an_overlong_tag_is_refused(images: ImageAPI, queued: dict[str, Any], tag: str) -> None:
    result = images.request("PUT", f"/images/{queued['id']}/tags/{tag}")

    images.assert_error(result, 400)
    _assert_untouched(images, queued["id"], queued)


def test_every_unanswered_method_is_a_glance_405(images: ImageAPI, services: Any) -> None:
    image = images.create()
    wrong = []
    checked = 0
    for template, methods in _route_table(services):
        path = template.format(
            image_id=image["id"],
            store_id="file",
            tag="t",
            namespace="ns",
            name="n",
            member_id="m",
            task_id="t",
        )
        path = "" if path == "/" else path
        for method in (*HTTP_METHODS, "HEAD"):
            if method in methods:
                continue
            checked += 1
            result = images.client.simulate_request(
                method, "/image" + path, headers={"X-Auth-Token": images.admin_token}
            )
            try:
                images.assert_error(result, 405, has_body=method != "HEAD")
                assert result.headers.get("allow"), result.headers
            except AssertionError as ex:
                wrong.append(f"{method} {template}: {ex}")
    assert checked > 30
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize(
    "path", ["/image/v2/nothing", "/image/v1/images", "/image/v2/images/x/y/z", "/image/v3"]
)
@pytest.mark.parametrize("with_token", [True, False])
def test_an_unknown_path_is_a_glance_404(images: ImageAPI, path: str, with_token: bool) -> None:
    headers = {"X-Auth-Token": images.admin_token} if with_token else {}

    result = images.client.simulate_get(path, headers=headers)

    images.assert_error(result, 404)


# == Listing =================================================================


#: Query strings no list request may take, as sent.
BAD_QUERIES = [
    "limit=-1",
    "limit=abc",
    "limit=",
    "limit=1.5",
    "limit=99999999999999999999999",
    "limit=1&limit=2",
    "sort_key=bogus",
    "sort_key=name&sort_key=name",
    "sort_dir=sideways",
    "sort_key=name&sort_dir=asc&sort_dir=desc&sort_dir=asc",
    "sort=name:asc&sort_key=name",
    "sort=name:asc&sort_dir=asc",
    "sort=bogus:asc",
    "sort=name:up",
    "size_min=abc",
    "size_min=-1",
    "size_max=1e3",
    "created_at=gte:not-a-date",
    "created_at=gte:",
    "updated_at=2026-13-01T00:00:00Z",
    "visibility=bogus",
    "visibility=",
    "member_status=bogus",
    "protected=maybe",
    "protected=",
    "os_hidden=perhaps",
    "status=bogus",
    "status=in:active,bogus",
    "name=in:",
    "name=in:,,",
    "marker=a&marker=b",
]


def test_bad_list_queries_are_refused(images: ImageAPI) -> None:
    images.create()

    results = {
        query: (images.request("GET", "/images", query_string=query), "") for query in BAD_QUERIES
    }

    _assert_all_errors(images, 400, results)


def test_an_unknown_marker_is_a_bad_request(images: ImageAPI) -> None:
    images.create()

    for marker in (str(uuid.uuid4()), "not-a-uuid", "x" * 300):
        result = images.request("GET", "/images", params={"marker": marker})

        images.assert_error(result, 400)


def test_a_marker_the_caller_cannot_see_is_a_bad_request(
    images: ImageAPI, alice: Member, bob: Member, image_of: Callable[..., dict[str, Any]]
) -> None:
    hidden = image_of(bob, visibility="private")

    result = images.request("GET", "/images", params={"marker": hidden["id"]}, token=alice.token)

    images.assert_error(result, 400)


@pytest.mark.parametrize(
    "value",
    [
        "lt:9999-12-31T23:59:59-05:00",
        "gte:0001-01-01T00:00:00+01:00",
        "9999-12-31T23:00:00-01:00",
    ],
)
@pytest.mark.parametrize("field", ["created_at", "updated_at"])
def test_times_beyond_the_calendar_in_utc_are_bad_requests(
    images: ImageAPI, field: str, value: str
) -> None:
    """A time that converts to UTC outside years 1-9999 is bad input, not a 500."""
    images.create()

    result = images.request("GET", "/images", params={field: value})

    images.assert_error(result, 400)


# == Upload and download =====================================================


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/json",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        PATCH_TYPES[0],
        "application/octet-streamx",
    ],
)
def test_an_upload_must_be_octet_stream(
    images: ImageAPI, queued: dict[str, Any], content_type: str
) -> None:
    result = images.upload(queued["id"], DATA, content_type=content_type)

    images.assert_error(result, 415)
    _assert_untouched(images, queued["id"], queued, uploaded=True)
    assert images.stored_files() == []


def test_an_upload_to_an_active_image_conflicts(images: ImageAPI) -> None:
    image_id = images.active(DATA)
    before = images.show(image_id)

    result = images.upload(image_id, b"other data")

    images.assert_error(result, 409)
    _assert_untouched(images, image_id, before, uploaded=True)
    assert images.download(image_id).content == DATA


def test_an_upload_to_a_deactivated_image_conflicts(images: ImageAPI) -> None:
    image_id = images.active(DATA)
    assert images.request("POST", f"/images/{image_id}/actions/deactivate").status_code == 204
    before = images.show(image_id)

    result = images.upload(image_id, b"other data")

    images.assert_error(result, 409)
    _assert_untouched(images, image_id, before, uploaded=True)
    assert before["status"] == "deactivated"
    assert images.download(image_id).content == DATA


def test_a_body_shorter_than_its_content_length_stores_nothing(
    images: ImageAPI, queued: dict[str, Any]
) -> None:
    """The simulator sends the declared Content-Length with the shorter body as is."""
    result = images.upload(queued["id"], DATA, headers={"Content-Length": "100"})

    message = images.assert_error(result, 400)
    assert "10 of the 100" in message
    _assert_untouched(images, queued["id"], queued, uploaded=True)
    assert images.stored_files() == []


def _other_md5(encoding: str) -> str:
    digest = hashlib.md5(b"not the data", usedforsecurity=False)
    if encoding == "hex":
        return digest.hexdigest()
    return base64.b64encode(digest.digest()).decode()


@pytest.mark.parametrize("encoding", ["hex", "base64"])
def test_a_content_md5_mismatch_stores_nothing(
    images: ImageAPI, queued: dict[str, Any], encoding: str
) -> None:
    result = images.upload(queued["id"], DATA, headers={"Content-MD5": _other_md5(encoding)})

    message = images.assert_error(result, 400)
    assert "md5" in message
    _assert_untouched(images, queued["id"], queued, uploaded=True)
    assert images.stored_files() == []


@pytest.mark.parametrize(
    "header", ["zz", "0" * 31, "0" * 33, base64.b64encode(b"x" * 15).decode(), "not base64!"]
)
def test_a_malformed_content_md5_is_refused(
    images: ImageAPI, queued: dict[str, Any], header: str
) -> None:
    result = images.upload(queued["id"], DATA, headers={"Content-MD5": header})

    images.assert_error(result, 400)
    _assert_untouched(images, queued["id"], queued, uploaded=True)
    assert images.stored_files() == []


def test_a_matching_content_md5_is_accepted(images: ImageAPI, queued: dict[str, Any]) -> None:
    md5 = hashlib.md5(DATA, usedforsecurity=False)

    result = images.upload(
        queued["id"], DATA, headers={"Content-MD5": base64.b64encode(md5.digest()).decode()}
    )

    assert result.status_code == 204, result.text
    assert images.show(queued["id"])["checksum"] == md5.hexdigest()


@pytest.mark.parametrize(
    ("prop", "digest"),
    [("owner_specified.openstack.md5", "md5"), ("owner_specified.openstack.sha256", "sha256")],
)
def test_a_declared_hash_that_does_not_match_stores_nothing(
    images: ImageAPI, prop: str, digest: str
) -> None:
    declared = hashlib.new(digest, b"not the data").hexdigest()
    image = images.create(**{prop: declared})

    result = images.upload(image["id"], DATA)

    message = images.assert_error(result, 400)
    assert digest in message
    _assert_untouched(images, image["id"], image, uploaded=True)
    assert images.stored_files() == []


def test_declared_hashes_that_match_let_the_upload_through(images: ImageAPI) -> None:
    """openstacksdk declares both hashes on every ``image create --file``."""
    image = images.create(
        **{
            "owner_specified.openstack.md5": hashlib.md5(DATA, usedforsecurity=False).hexdigest(),
            "owner_specified.openstack.sha256": hashlib.sha256(DATA).hexdigest(),
            "owner_specified.openstack.object": "images/img",
        }
    )

    result = images.upload(image["id"], DATA)

    assert result.status_code == 204, result.text
    assert images.show(image["id"])["status"] == "active"


@pytest.mark.parametrize(
    ("disk_format", "data"),
    [
        ("qcow2", DATA * 100),
        ("qcow2", _qcow2(backing_offset=512)),
        ("vmdk", DATA * 100),
        ("raw", _qcow2()),
    ],
    ids=["qcow2-holding-raw", "qcow2-with-backing-file", "vmdk-holding-raw", "raw-holding-qcow2"],
)
def test_data_not_in_the_declared_format_stores_nothing(
    images: ImageAPI, disk_format: str, data: bytes
) -> None:
    image = images.create(disk_format=disk_format)

    result = images.upload(image["id"], data)

    images.assert_error(result, 400)
    _assert_untouched(images, image["id"], image, uploaded=True)
    assert images.stored_files() == []


@pytest.mark.parametrize(
    "formats",
    [{}, {"disk_format": "raw"}, {"container_format": "bare"}],
    ids=["neither", "no-container-format", "no-disk-format"],
)
def test_an_upload_needs_both_formats(images: ImageAPI, formats: dict[str, str]) -> None:
    """Glance: "Properties disk_format, container_format must be set prior to saving data"."""
    image = images.request("POST", "/images", {"name": "n", **formats}).json

    result = images.upload(image["id"], DATA)

    message = images.assert_error(result, 400)
    assert "format" in message
    _assert_untouched(images, image["id"], image, uploaded=True)
    assert images.stored_files() == []


@pytest.mark.parametrize("chunked", [False, True], ids=["declared", "chunked"])
def test_an_image_over_the_size_cap_stores_nothing(
    images: ImageAPI, queued: dict[str, Any], chunked: bool
) -> None:
    images.conf.set_override("image_size_cap", len(DATA) - 1, group="image")

    result = _upload_stream(images, queued["id"], DATA, chunked=chunked)

    images.assert_error(result, 413)
    _assert_untouched(images, queued["id"], queued, uploaded=True)
    assert images.stored_files() == []


def _upload_stream(images: ImageAPI, image_id: str, data: bytes, *, chunked: bool) -> Any:
    """PUT *data*; *chunked* sends it without a Content-Length, as a chunked request is seen."""
    if not chunked:
        return images.upload(image_id, data)
    return images.client.simulate_put(
        f"/image/v2/images/{image_id}/file",
        headers={
            "X-Auth-Token": images.admin_token,
            "Content-Type": OCTET,
            "Transfer-Encoding": "chunked",
        },
        extras={"wsgi.input": io.BytesIO(data)},
    )


def test_a_range_past_the_end_is_not_satisfiable(images: ImageAPI) -> None:
    image_id = images.active(DATA)
    ranges = ["bytes=10-", "bytes=10-20", "bytes=100-", "bytes=-0", "bytes=10-10"]

    results = {
        header: (images.download(image_id, headers={"Range": header}), "") for header in ranges
    }

    _assert_all_errors(images, 416, results)


def test_a_range_with_absurdly_long_numbers_is_not_satisfiable(images: ImageAPI) -> None:
    image_id = images.active(DATA)
    digits = "7" * 5000
    ranges = [f"bytes=0-{digits}", f"bytes={digits}-", f"bytes=-{digits}", f"bytes=1-{digits}"]

    results = {
        header[:20]: (images.download(image_id, headers={"Range": header}), "") for header in ranges
    }

    _assert_all_errors(images, 416, results)
    # Leading zeros are not digits of the position.
    result = images.download(image_id, headers={"Range": "bytes=" + "0" * 100 + "1-2"})
    assert (result.status_code, result.content) == (206, DATA[1:3])


def test_a_malformed_range_is_ignored(images: ImageAPI) -> None:
    """A server may ignore a Range it does not understand: the whole image, 200."""
    image_id = images.active(DATA)
    ranges = [
        "garbage",
        "bytes=abc",
        "bytes=",
        "bytes=-",
        "items=0-1",
        "bytes=5-2",
        "bytes=0-1,3-4",
        "bytes 0-1",
        "bytes=--1",
        "bytes=1-2-3",
    ]

    for header in ranges:
        result = images.download(image_id, headers={"Range": header})

        assert result.status_code == 200, (header, result.text)
        assert result.content == DATA, header
        assert "content-range" not in result.headers, header


# == Quotas ==================================================================


def test_the_image_count_quota(images: ImageAPI, alice: Member, bob: Member) -> None:
    images.conf.set_override("image_count_quota", 1, group="image")
    first = images.create(token=alice.token)

    result = images.request("POST", "/images", {"name": "second"}, token=alice.token)

    message = images.assert_error(result, 413)
    assert "image_count" in message
    assert images.ids() == {first["id"]}
    # The quota is per project.
    images.create(token=bob.token)


@pytest.mark.parametrize("chunked", [False, True], ids=["declared", "chunked"])
def test_the_image_storage_quota(images: ImageAPI, alice: Member, chunked: bool) -> None:
    images.conf.set_override("image_storage_quota", len(DATA) + 5, group="image")
    images.active(DATA, token=alice.token)
    stored = images.stored_files()
    image = images.create(token=alice.token)

    result = _upload_stream(images, image["id"], b"x" * 6, chunked=chunked)

    message = images.assert_error(result, 413)
    assert "storage" in message
    _assert_untouched(images, image["id"], image, uploaded=True)
    assert images.stored_files() == stored


def test_the_image_tag_quota(images: ImageAPI) -> None:
    images.conf.set_override("image_tag_quota", 2, group="image")
    before = images.ids()
    images.assert_error(images.request("POST", "/images", {"tags": ["a", "b", "c"]}), 413)
    assert images.ids() == before
    image = images.create(tags=["a", "b"])

    put = images.request("PUT", f"/images/{image['id']}/tags/c")
    patch = images.patch(image["id"], [_patch_op("replace", "/tags", ["a", "b", "c"])])

    images.assert_error(put, 413)
    images.assert_error(patch, 413)
    _assert_untouched(images, image["id"], image)
    # Tags repeated in one request count once.
    again = images.patch(image["id"], [_patch_op("replace", "/tags", ["a", "a", "b"])])
    assert again.status_code == 200, again.text


def test_the_image_property_quota(images: ImageAPI) -> None:
    images.conf.set_override("image_property_quota", 2, group="image")
    before = images.ids()
    images.assert_error(images.request("POST", "/images", {"a": "1", "b": "2", "c": "3"}), 413)
    assert images.ids() == before
    image = images.create(a="1", b="2")

    result = images.patch(image["id"], [_patch_op("add", "/c", "3")])

    images.assert_error(result, 413)
    _assert_untouched(images, image["id"], image)


def test_the_image_member_quota(images: ImageAPI, alice: Member, bob: Member) -> None:
    images.conf.set_override("image_member_quota", 1, group="image")
    image = images.create(visibility="shared")
    images.add_member(image["id"], alice.project["id"])

    result = images.request("POST", f"/images/{image['id']}/members", {"member": bob.project["id"]})

    images.assert_error(result, 413)
    members = images.request("GET", f"/images/{image['id']}/members").json["members"]
    assert [m["member_id"] for m in members] == [alice.project["id"]]


# == Policy ==================================================================


@pytest.mark.parametrize("how", ["create", "patch"])
def test_a_member_cannot_make_an_image_public(images: ImageAPI, alice: Member, how: str) -> None:
    if how == "create":
        before = images.ids()
        result = images.request("POST", "/images", {"visibility": "public"}, token=alice.token)
        images.assert_error(result, 403)
        assert images.ids() == before
        return
    image = images.create(token=alice.token, visibility="private")

    result = images.patch(
        image["id"], [_patch_op("replace", "/visibility", "public")], token=alice.token
    )

    images.assert_error(result, 403)
    _assert_untouched(images, image["id"], image)


def _foreign_requests(image_id: str) -> list[tuple[str, str, dict[str, Any]]]:
    """Return what a caller might try on someone else's image: (method, path, kwargs)."""
    item = f"/images/{image_id}"
    return [
        ("PATCH", item, _valid_request(item, "PATCH", "")),
        ("PUT", item + "/file", _valid_request("/file", "PUT", "")),
        ("PUT", item + "/tags/new", {}),
        ("DELETE", item + "/tags/t", {}),
        ("POST", item + "/actions/deactivate", {}),
        ("POST", item + "/actions/reactivate", {}),
        # Last: if it wrongly succeeds, the others above have been tried.
        ("DELETE", item, {}),
    ]


def test_a_member_cannot_change_a_public_image_of_another_project(
    images: ImageAPI, alice: Member, bob: Member, image_of: Callable[..., dict[str, Any]]
) -> None:
    image = image_of(bob, visibility="public", tags=["t"])
    wrong = []

    for method, path, kwargs in _foreign_requests(image["id"]):
        result = images.request(method, path, token=alice.token, **kwargs)

        try:
            images.assert_error(result, 403)
        except AssertionError as ex:
            wrong.append(f"{method} {path}: {ex}")
    assert not wrong, "\n".join(wrong)
    _assert_untouched(images, image["id"], image)
    assert images.request("GET", f"/images/{image['id']}", token=alice.token).status_code == 200


@pytest.mark.parametrize("visibility", ["private", "shared"])
def test_another_projects_private_image_is_not_found(
    images: ImageAPI,
    alice: Member,
    bob: Member,
    image_of: Callable[..., dict[str, Any]],
    visibility: str,
) -> None:
    image = image_of(bob, visibility=visibility, tags=["t"], data=DATA)
    item = f"/images/{image['id']}"
    tries = [
        ("GET", item, {}),
        ("GET", item + "/file", {}),
        ("GET", item + "/members", {}),
        ("GET", item + f"/members/{alice.project['id']}", {}),
        ("POST", item + "/members", {"body": {"member": alice.project["id"]}}),
        ("PUT", item + f"/members/{alice.project['id']}", {"body": {"status": "accepted"}}),
        *_foreign_requests(image["id"]),
    ]
    wrong = []

    for method, path, kwargs in tries:
        result = images.request(method, path, token=alice.token, **kwargs)

        try:
            images.assert_error(result, 404)
        except AssertionError as ex:
            wrong.append(f"{method} {path}: {ex}")
    assert not wrong, "\n".join(wrong)
    _assert_untouched(images, image["id"], image)
    listed = images.request("GET", "/images", params={"visibility": "all"}, token=alice.token)
    assert image["id"] not in {i["id"] for i in listed.json["images"]}
    assert images.download(image["id"]).content == DATA


def test_a_token_without_a_project_cannot_create_images(
    images: ImageAPI, domain_token: str
) -> None:
    """A domain-scoped token has no project to own the image: 403, not an ownerless image."""
    before = images.ids()

    result = images.request("POST", "/images", {"name": "n"}, token=domain_token)

    images.assert_error(result, 403)
    assert images.ids() == before


def test_a_token_without_a_project_cannot_change_an_ownerless_image(
    images: ImageAPI, domain_token: str
) -> None:
    """``project_id:%(project_id)s`` must not match a missing project against a missing owner."""
    image = images.create(visibility="public", tags=["t"])
    orphaned = images.patch(image["id"], [_patch_op("replace", "/owner", None)])
    assert orphaned.status_code == 200, orphaned.text
    image = images.show(image["id"])
    wrong = []

    for method, path, kwargs in _foreign_requests(image["id"]):
        result = images.request(method, path, token=domain_token, **kwargs)

        try:
            images.assert_error(result, 403)
        except AssertionError as ex:
            wrong.append(f"{method} {path}: {ex}")
    assert not wrong, "\n".join(wrong)
    _assert_untouched(images, image["id"], image)


def test_a_token_without_a_project_lists_no_ownerless_private_images(
    images: ImageAPI, domain_token: str
) -> None:
    """An ownerless image is nobody's: a caller without a project must not list it as its own."""
    image = images.create(visibility="private")
    assert images.patch(image["id"], [_patch_op("replace", "/owner", None)]).status_code == 200

    listed = {
        visibility: images.request(
            "GET", "/images", params={"visibility": visibility}, token=domain_token
        )
        for visibility in ("private", "shared", "all")
    }

    for visibility, result in listed.items():
        assert result.status_code == 200, result.text
        ids = {i["id"] for i in result.json["images"]}
        assert image["id"] not in ids, visibility


@pytest.mark.parametrize("caller", ["owner", "admin"])
def test_a_protected_image_cannot_be_deleted(
    images: ImageAPI, alice: Member, image_of: Callable[..., dict[str, Any]], caller: str
) -> None:
    image = image_of(alice, protected=True, data=DATA)
    token = alice.token if caller == "owner" else images.admin_token

    result = images.request("DELETE", f"/images/{image['id']}", token=token)

    message = images.assert_error(result, 403)
    assert "protected" in message
    _assert_untouched(images, image["id"], image)
    assert image["id"] in images.stored_files()


@pytest.mark.parametrize("caller", ["owner", "other"])
def test_a_deactivated_image_cannot_be_downloaded_by_non_admins(
    images: ImageAPI,
    alice: Member,
    bob: Member,
    image_of: Callable[..., dict[str, Any]],
    caller: str,
) -> None:
    image = image_of(alice, visibility="public", data=DATA)
    assert images.request("POST", f"/images/{image['id']}/actions/deactivate").status_code == 204
    token = alice.token if caller == "owner" else bob.token

    result = images.download(image["id"], token=token)

    message = images.assert_error(result, 403)
    assert "deactivated" in message


def test_an_admin_may_download_a_deactivated_image(images: ImageAPI) -> None:
    """Glance lets admins read a deactivated image's data (to inspect it)."""
    image_id = images.active(DATA)
    assert images.request("POST", f"/images/{image_id}/actions/deactivate").status_code == 204

    result = images.download(image_id)

    assert result.status_code == 200, result.status
    assert result.content == DATA


@pytest.mark.parametrize("action", ["deactivate", "reactivate"])
def test_actions_on_a_queued_image_are_forbidden(
    images: ImageAPI, queued: dict[str, Any], action: str
) -> None:
    result = images.request("POST", f"/images/{queued['id']}/actions/{action}")

    images.assert_error(result, 403)
    _assert_untouched(images, queued["id"], queued)


# == Members =================================================================


@pytest.mark.parametrize("visibility", ["private", "public", "community"])
def test_only_shared_images_have_members(
    images: ImageAPI,
    alice: Member,
    bob: Member,
    image_of: Callable[..., dict[str, Any]],
    visibility: str,
) -> None:
    image = image_of(alice, visibility=visibility)
    path = f"/images/{image['id']}/members"

    add = images.request("POST", path, {"member": bob.project["id"]}, token=alice.token)
    listing = images.request("GET", path, token=alice.token)

    images.assert_error(add, 403)
    images.assert_error(listing, 403)
    _assert_untouched(images, image["id"], image)


@pytest.fixture
def shared(
    images: ImageAPI, alice: Member, bob: Member, image_of: Callable[..., dict[str, Any]]
) -> dict[str, Any]:
    """Alice's shared image, with Bob's project as a pending member."""
    image = image_of(alice, visibility="shared")
    images.add_member(image["id"], bob.project["id"], token=alice.token)
    return image


def _members(images: ImageAPI, image_id: str) -> list[dict[str, Any]]:
    result = images.request("GET", f"/images/{image_id}/members")
    assert result.status_code == 200, result.text
    return result.json["members"]


def test_a_duplicate_member_conflicts(
    images: ImageAPI, alice: Member, bob: Member, shared: dict[str, Any]
) -> None:
    before = _members(images, shared["id"])

    result = images.request(
        "POST", f"/images/{shared['id']}/members", {"member": bob.project["id"]}, token=alice.token
    )

    images.assert_error(result, 409)
    assert _members(images, shared["id"]) == before


def test_a_bad_member_body_is_refused(
    images: ImageAPI, alice: Member, shared: dict[str, Any]
) -> None:
    documents: list[Any] = [
        {},
        {"member": ""},
        {"member": 3},
        {"member": None},
        {"member": ["p"]},
        {"member": "x" * 256},
        {"member_id": "p"},
        [],
        [{"member": "p"}],
        "p",
        None,
    ]
    before = _members(images, shared["id"])
    path = f"/images/{shared['id']}/members"

    results = {
        json.dumps(document)[:30]: (images.request("POST", path, document, token=alice.token), "")
        for document in documents
    }

    _assert_all_errors(images, 400, results)
    assert _members(images, shared["id"]) == before


def test_the_owner_cannot_accept_for_a_member(
    images: ImageAPI, alice: Member, bob: Member, shared: dict[str, Any]
) -> None:
    before = _members(images, shared["id"])

    result = images.request(
        "PUT",
        f"/images/{shared['id']}/members/{bob.project['id']}",
        {"status": "accepted"},
        token=alice.token,
    )

    images.assert_error(result, 403)
    assert _members(images, shared["id"]) == before


def test_a_bad_member_status_is_refused(
    images: ImageAPI, bob: Member, shared: dict[str, Any]
) -> None:
    documents: list[Any] = [
        {"status": "bogus"},
        {"status": "ACCEPTED"},
        {"status": ""},
        {"status": None},
        {"status": 1},
        {},
        {"member": "p"},
        [],
        "accepted",
    ]
    before = _members(images, shared["id"])
    path = f"/images/{shared['id']}/members/{bob.project['id']}"

    results = {
        json.dumps(document)[:30]: (images.request("PUT", path, document, token=bob.token), "")
        for document in documents
    }

    _assert_all_errors(images, 400, results)
    assert _members(images, shared["id"]) == before
    assert before[0]["status"] == "pending"


def test_a_member_cannot_share_or_unshare_an_image(
    images: ImageAPI, alice: Member, bob: Member, shared: dict[str, Any]
) -> None:
    before = _members(images, shared["id"])
    path = f"/images/{shared['id']}/members"

    add = images.request("POST", path, {"member": uuid.uuid4().hex}, token=bob.token)
    remove = images.request("DELETE", f"{path}/{bob.project['id']}", token=bob.token)

    images.assert_error(add, 403)
    images.assert_error(remove, 403)
    assert _members(images, shared["id"]) == before


# == Authentication ==========================================================


@pytest.mark.parametrize("token", [None, "", "junk", "gAAAAA" + "x" * 200])
def test_every_route_but_discovery_needs_a_valid_token(
    images: ImageAPI, services: Any, token: str | None
) -> None:
    image = images.create()
    challenge = f'Keystone uri="{nimbus.wsgi.public_url(images.conf)}/identity/v3"'
    wrong = []
    checked = 0
    for template, methods in _route_table(services):
        path = template.format(
            image_id=image["id"],
            store_id="file",
            tag="t",
            namespace="ns",
            name="n",
            member_id="m",
            task_id="t",
        )
        public = routes.is_public("GET", path)
        for method in methods:
            headers = {} if token is None else {"X-Auth-Token": token}
            result = images.client.simulate_request(
                method, "/image" + ("" if path == "/" else path), headers=headers
            )
            if public:
                expected = 200 if path == "/versions" else 300
                assert result.status_code == expected, (method, path, result.status)
                continue
            checked += 1
            try:
                images.assert_error(result, 401)
                assert result.headers.get("www-authenticate") == challenge, result.headers
            except AssertionError as ex:
                wrong.append(f"{method} {template}: {ex}")
    assert checked >= 20
    assert not wrong, "\n".join(wrong)
    _assert_untouched(images, image["id"], image)
