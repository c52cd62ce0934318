"""``nimbus plugins``."""

from __future__ import annotations

import json
from importlib import metadata

import pytest

from nimbus import registry
from nimbus.cmd.main import main

IDENTITY = "nimbus.identity.backends"
# The distribution installed here that brings the nimbus command: the one the
# in-tree plugins are listed under (nimbus-cloud; an install made before the
# distribution was renamed still says nimbus).
(OURS,) = {ep.dist.name for ep in metadata.entry_points(group="console_scripts", name="nimbus")}


def test_table_lists_every_namespace(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    for namespace, description in registry.NAMESPACES.items():
        assert f"{namespace}: {description}" in out
    assert "(none installed)" in out  # nobody ships meter pollsters yet


def test_table_rows(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plugins", "--namespace", IDENTITY]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"{IDENTITY}: {registry.NAMESPACES[IDENTITY]}"
    assert lines[1].split() == ["NAME", "DISTRIBUTION", "DESCRIPTION"]
    rows = {line.split()[0]: line for line in lines[2:]}
    assert rows["sql"].split(None, 2) == [
        "sql",
        OURS,
        "Users and groups in nimbus's SQL database.",
    ]
    assert rows["fake"].split(None, 2)[:2] == ["fake", OURS]
    # The columns line up.
    assert len({line.index(f"{OURS} ") for line in rows.values()}) == 1


def test_namespace_filter(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plugins", "--namespace", IDENTITY, "--namespace", "nimbus.filters.compute"]) == 0
    out = capsys.readouterr().out
    assert IDENTITY in out and "nimbus.filters.compute" in out
    assert "nimbus.messaging.transports" not in out


def test_unknown_namespace_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["plugins", "--namespace", "nimbus.nonsense"])
    assert info.value.code == 2
    assert IDENTITY in capsys.readouterr().err


def test_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plugins", "--format", "json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert list(listed) == list(registry.NAMESPACES)
    sql = {entry["name"]: entry for entry in listed[IDENTITY]}["sql"]
    assert sql == {
        "name": "sql",
        "distribution": OURS,
        "target": "nimbus.drivers.identity.sql.driver:SqlIdentityDriver",
        "summary": "Users and groups in nimbus's SQL database.",
    }


def test_json_with_a_filter(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plugins", "--format", "json", "--namespace", IDENTITY]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert list(listed) == [IDENTITY]
    assert {"fake", "sql"} <= {entry["name"] for entry in listed[IDENTITY]}
