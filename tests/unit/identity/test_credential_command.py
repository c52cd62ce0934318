"""Tests of ``nimbus credential setup``."""

from __future__ import annotations

import argparse
import os

from nimbus.cmd import credential


def _run(config_file: str, *argv: str) -> int:
    parser = argparse.ArgumentParser(prog="nimbus")
    parser.add_argument("--config-file", action="append", default=[])
    parser.add_argument("--config-dir", action="append", default=[])
    credential.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["--config-file", config_file, "credential", *argv])
    return args.func(args)


def test_setup_creates_the_keys_once_and_never_prints_them(tmp_path, capsys) -> None:
    state = tmp_path / "state"
    config_file = tmp_path / "nimbus.conf"
    config_file.write_text(f"[DEFAULT]\nstate_path = {state}\n")

    assert _run(str(config_file), "setup") == 0
    repository = state / "credential-keys"
    assert sorted(os.listdir(repository)) == ["0", "1"]
    keys = {name: (repository / name).read_text() for name in ("0", "1")}
    out = capsys.readouterr().out
    assert str(repository) in out and "staged key 0, primary key 1" in out
    assert not any(key in out for key in keys.values())

    assert _run(str(config_file), "setup") == 0
    assert "already holds keys 0, 1; left as is" in capsys.readouterr().out
    assert {name: (repository / name).read_text() for name in ("0", "1")} == keys
