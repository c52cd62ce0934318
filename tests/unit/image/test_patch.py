"""Unit tests of :mod:`nimbus.image.patch` (Glance's JSON-patch documents)."""

from __future__ import annotations

from typing import Any

import pytest
from oslo_config import cfg

from nimbus import exception
from nimbus.image import patch

CURRENT: dict[str, Any] = {
    "name": "cirros",
    "disk_format": "qcow2",
    "container_format": "bare",
    "tags": [],
    "hw_arch": "x86_64",
}


def test_parse_ops_and_pointer_escapes() -> None:
    changes = patch.parse(
        [
            {"op": "replace", "path": "/name", "value": "n"},
            {"op": "add", "path": "/a~1b~0c", "value": "v"},
            {"op": "remove", "path": "/hw_arch"},
        ]
    )
    assert changes == [
        patch.Change("replace", "name", "n"),
        patch.Change("add", "a/b~c", "v"),
        patch.Change("remove", "hw_arch", None),
    ]


@pytest.mark.parametrize(
    "document",
    [
        {"op": "add"},
        [1],
        [{"op": "move", "path": "/name", "value": 1}],
        [{"op": "add", "path": "/name"}],
        [{"op": "remove", "path": "/name", "value": 1}],
        [{"op": "add", "path": "name", "value": 1}],
        [{"op": "add", "path": "/a/b", "value": 1}],
    ],
)
def test_parse_refuses_malformed_documents(document: Any) -> None:
    with pytest.raises(exception.BadRequest):
        patch.parse(document)


def test_parse_refuses_locations() -> None:
    with pytest.raises(exception.Forbidden):
        patch.parse([{"op": "replace", "path": "/locations", "value": []}])


def apply(conf: cfg.ConfigOpts, *changes: patch.Change, status: str = "queued") -> dict[str, Any]:
    return patch.apply(conf, CURRENT, list(changes), status=status, may_set_owner=False)


def test_apply_sets_adds_and_removes(conf: cfg.ConfigOpts) -> None:
    result = apply(
        conf,
        patch.Change("replace", "name", "new"),
        patch.Change("add", "os_distro", "debian"),
        patch.Change("replace", "tags", ["a", "b", "a"]),
        patch.Change("replace", "min_disk", 5.0),
        patch.Change("remove", "hw_arch"),
    )
    assert result["name"] == "new"
    assert result["os_distro"] == "debian"
    assert result["tags"] == ["a", "b"]
    assert result["min_disk"] == 5 and isinstance(result["min_disk"], int)
    assert "hw_arch" not in result
    assert CURRENT["hw_arch"] == "x86_64", "the current attributes are not changed"


def test_apply_conflicts_on_custom_properties(conf: cfg.ConfigOpts) -> None:
    with pytest.raises(exception.InvalidState, match="already present"):
        apply(conf, patch.Change("add", "hw_arch", "arm"))
    with pytest.raises(exception.InvalidState, match="does not exist"):
        apply(conf, patch.Change("replace", "nothing", "x"))
    with pytest.raises(exception.InvalidState, match="does not exist"):
        apply(conf, patch.Change("remove", "nothing"))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (patch.Change("replace", "status", "active"), "read-only"),
        (patch.Change("add", "deleted", True), "reserved"),
        (patch.Change("remove", "name"), "may not be removed"),
        (patch.Change("replace", "owner", "p9"), "administrators"),
    ],
)
def test_apply_forbids(conf: cfg.ConfigOpts, change: patch.Change, message: str) -> None:
    with pytest.raises(exception.Forbidden, match=message):
        apply(conf, change)


def test_formats_are_fixed_after_upload(conf: cfg.ConfigOpts) -> None:
    change = patch.Change("replace", "disk_format", "raw")
    assert apply(conf, change)["disk_format"] == "raw"
    with pytest.raises(exception.Forbidden, match="queued"):
        apply(conf, change, status="active")


def test_apply_validates_values(conf: cfg.ConfigOpts) -> None:
    with pytest.raises(exception.ValidationError):
        apply(conf, patch.Change("replace", "min_ram", "lots"))
