"""The sample generator sees every nimbus option, each with help text."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from nimbus.conf import opts


def test_every_option_has_help() -> None:
    missing = [
        (getattr(group, "name", group), opt.name)
        for group, group_opts in opts.list_opts()
        for opt in group_opts
        if not (opt.help or "").strip()
    ]
    assert missing == []


def test_generator_prints_every_option() -> None:
    generator = Path(sys.executable).parent / "oslo-config-generator"
    out = subprocess.run(
        [str(generator), "--namespace", "nimbus"], capture_output=True, text=True, check=True
    ).stdout
    for group, group_opts in opts.list_opts():
        name = getattr(group, "name", group) or "DEFAULT"
        assert f"[{name}]" in out
        for opt in group_opts:
            assert f"#{opt.dest} = " in out or f"#{opt.dest} =\n" in out, opt.dest
