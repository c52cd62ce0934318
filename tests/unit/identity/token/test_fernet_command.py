"""Tests of ``nimbus fernet setup`` and ``nimbus fernet rotate``."""

from __future__ import annotations

import argparse
import os

import pytest

from nimbus.cmd import fernet
from nimbus.identity.token.keys import KeyRepositoryError


def _parser() -> argparse.ArgumentParser:
    # The global options of ``nimbus`` (nimbus.cmd.main.build_parser) that
    # config_argv reads, with only this sub-command registered.
    parser = argparse.ArgumentParser(prog="nimbus")
    parser.add_argument("--config-file", action="append", default=[])
    parser.add_argument("--config-dir", action="append", default=[])
    subparsers = parser.add_subparsers(dest="command", required=True)
    fernet.register(subparsers)
    return parser


def _run(config_file: str, *argv: str) -> int:
    args = _parser().parse_args(["--config-file", config_file, "fernet", *argv])
    return args.func(args)


@pytest.fixture
def state(tmp_path) -> str:
    return str(tmp_path / "state")


@pytest.fixture
def config_file(tmp_path, state: str) -> str:
    path = tmp_path / "nimbus.conf"
    path.write_text(f"[DEFAULT]\nstate_path = {state}\n")
    return str(path)


def _key_material(directory: str) -> list[str]:
    keys = []
    for name in os.listdir(directory):
        with open(os.path.join(directory, name)) as f:
            keys.append(f.read())
    return keys


def test_setup_creates_the_default_repository(config_file: str, state: str, capsys) -> None:
    assert _run(config_file, "setup") == 0

    repository = os.path.join(state, "fernet-keys")
    assert sorted(os.listdir(repository)) == ["0", "1"]
    out = capsys.readouterr().out
    assert repository in out
    assert "staged key 0, primary key 1" in out
    for key in _key_material(repository):
        assert key not in out


def test_setup_twice_changes_nothing(config_file: str, state: str, capsys) -> None:
    _run(config_file, "setup")
    repository = os.path.join(state, "fernet-keys")
    before = sorted(_key_material(repository))
    capsys.readouterr()

    assert _run(config_file, "setup") == 0

    assert sorted(_key_material(repository)) == before
    assert "already holds keys 0, 1" in capsys.readouterr().out


def test_rotate_prints_the_key_numbers(config_file: str, state: str, capsys) -> None:
    _run(config_file, "setup")
    capsys.readouterr()

    assert _run(config_file, "rotate") == 0
    first = capsys.readouterr().out
    assert _run(config_file, "rotate") == 0
    second = capsys.readouterr().out

    assert "primary key is now 2" in first
    assert "removed: none" in first
    assert "keys now 0, 1, 2" in first
    assert "primary key is now 3" in second
    assert "removed: 1" in second
    assert "keys now 0, 2, 3" in second
    for key in _key_material(os.path.join(state, "fernet-keys")):
        assert key not in first + second


def test_configured_repository_and_max_active_keys(tmp_path, capsys) -> None:
    repository = tmp_path / "elsewhere" / "keys"
    config = tmp_path / "custom.conf"
    config.write_text(
        f"[DEFAULT]\nstate_path = {tmp_path / 'state'}\n"
        f"[fernet_tokens]\nkey_repository = {repository}\nmax_active_keys = 4\n"
    )

    _run(str(config), "setup")
    for _ in range(4):
        _run(str(config), "rotate")

    assert sorted(os.listdir(repository), key=int) == ["0", "3", "4", "5"]
    assert not os.path.exists(tmp_path / "state" / "fernet-keys")


def test_rotate_without_setup_fails_with_the_fix(config_file: str, state: str) -> None:
    with pytest.raises(KeyRepositoryError) as info:
        _run(config_file, "rotate")

    assert os.path.join(state, "fernet-keys") in str(info.value)
    assert "nimbus fernet setup" in str(info.value)


def test_an_action_is_required(config_file: str) -> None:
    with pytest.raises(SystemExit):
        _parser().parse_args(["--config-file", config_file, "fernet"])


def test_through_the_nimbus_command(config_file: str, state: str, capsys) -> None:
    # Every sub-command module is imported here: a missing one is a failure.
    from nimbus.cmd import main

    assert main.main(["--config-file", config_file, "fernet", "rotate"]) == 1
    assert "nimbus fernet setup" in capsys.readouterr().err
    assert main.main(["--config-file", config_file, "fernet", "setup"]) == 0
    assert sorted(os.listdir(os.path.join(state, "fernet-keys"))) == ["0", "1"]
