"""The ``nimbus`` command line: global options before or after the sub-command."""

from __future__ import annotations

import pytest

from nimbus.cmd import main


@pytest.mark.parametrize(
    "argv",
    [
        ["--config-file", "a.conf", "fernet", "rotate", "--config-file", "b.conf"],
        ["fernet", "rotate", "--config-file", "a.conf", "--config-file", "b.conf"],
        ["--config-file", "a.conf", "--config-file", "b.conf", "fernet", "rotate"],
    ],
)
def test_config_files_in_either_place(argv: list[str]) -> None:
    args = main.build_parser().parse_args(argv)
    assert main.config_argv(args) == ["--config-file", "a.conf", "--config-file", "b.conf"]


def test_every_sub_command_is_registered() -> None:
    parser = main.build_parser()
    for command in ("up", "bootstrap", "db", "fernet", "credential", "plugins"):
        assert (
            parser.parse_args(
                [command]
                if command in ("up", "bootstrap", "plugins")
                else [command, "current" if command == "db" else "setup"]
            ).command
            == command
        )
