"""Tests of ``nimbus db``: upgrade, current and downgrade on a SQLite state dir."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from nimbus.cmd import main
from nimbus.conf import database as database_opts
from nimbus.conf import new_config
from nimbus.db import migration


@pytest.fixture(autouse=True)
def _only_db_command(monkeypatch: pytest.MonkeyPatch) -> None:
    # Go through the real main(), but register only the command under test,
    # so that these tests depend on no other sub-command's module.
    monkeypatch.setattr(main, "_COMMANDS", ("nimbus.cmd.db",))


def _clear_database_overrides() -> None:
    # oslo.config shares a group's option state between ConfigOpts objects,
    # so another test's [database] override would reach the config main() loads.
    conf = new_config()
    for opt in database_opts.OPTS:
        conf.clear_override(opt.dest, group="database")


@pytest.fixture(autouse=True)
def _no_database_overrides() -> Iterator[None]:
    _clear_database_overrides()
    yield
    _clear_database_overrides()


def _config_file(tmp_path: Path, **database: object) -> str:
    lines = ["[DEFAULT]", f"state_path = {tmp_path / 'state'}", "[database]"]
    lines += [f"{key} = {value}" for key, value in database.items()]
    path = tmp_path / "nimbus.conf"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def _nimbus_db(config_file: str, *argv: str) -> int:
    return main.main(["--config-file", config_file, "db", *argv])


def test_upgrade_then_current(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config_file = _config_file(tmp_path)
    head = migration.head()

    assert _nimbus_db(config_file, "upgrade") == 0
    out = capsys.readouterr().out
    assert f"at revision {head} (head)" in out
    assert (tmp_path / "state" / "nimbus.sqlite").is_file()

    assert _nimbus_db(config_file, "current") == 0
    out = capsys.readouterr().out
    assert f"Revision: {head} (head)" in out
    assert str(tmp_path / "state" / "nimbus.sqlite") in out


def test_current_on_an_empty_database_is_not_the_head(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _nimbus_db(_config_file(tmp_path), "current") == 0

    out = capsys.readouterr().out
    assert "Revision: base" in out
    assert f"not the head: {migration.head()}" in out
    assert "nimbus db upgrade" in out


def test_downgrade_to_base(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config_file = _config_file(tmp_path)
    assert _nimbus_db(config_file, "upgrade", "--revision", migration.head()) == 0

    assert _nimbus_db(config_file, "downgrade", "base") == 0
    assert _nimbus_db(config_file, "current") == 0

    assert "Revision: base" in capsys.readouterr().out


def test_unknown_revision_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _nimbus_db(_config_file(tmp_path), "upgrade", "--revision", "nope") == 1

    err = capsys.readouterr().err
    assert err.startswith("nimbus db upgrade: ")
    assert "nope" in err


def test_downgrade_needs_a_revision(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        _nimbus_db(_config_file(tmp_path), "downgrade")

    assert info.value.code == 2
    assert "REVISION" in capsys.readouterr().err


@pytest.mark.parametrize("action", [["current"], ["upgrade"], ["downgrade", "base"]])
def test_password_is_never_printed(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    action: list[str],
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    password = "s3cr3t-Pa55"
    config_file = _config_file(
        tmp_path,
        connection=f"mysql+pymysql://nimbus:{password}@127.0.0.1:{closed_port}/nimbus",
        max_retries=1,
        retry_interval=0,
    )
    caplog.set_level(logging.DEBUG)

    assert _nimbus_db(config_file, *action) == 1

    captured = capsys.readouterr()
    assert "Could not connect to the database" in captured.err
    assert password not in captured.out + captured.err
    assert password not in caplog.text
