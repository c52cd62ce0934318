"""The README followed as a new user follows it: ``nimbus up``, then the walk-through.

A new user's shell has not activated the virtualenv ``make up`` made: the
openrc must bring the ``openstack`` client it installed.  And a port that
is taken must be reported before ``nimbus up`` makes anything.
"""

from __future__ import annotations

import errno
import os
import re
import socket
import subprocess
import sysconfig
import time
from pathlib import Path

import pytest

from nimbus.testing.server import HOST, free_port, nimbus_up, nimbus_up_command

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
# The PATH of a login shell on a fresh Debian machine: no virtualenv in it.
FRESH_PATH = "/usr/local/bin:/usr/bin:/bin"


def _fresh_env(home: Path) -> dict[str, str]:
    """Return the environment of a new user's shell, whose home is *home*."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("OS_") and k not in ("VIRTUAL_ENV", "PYTHONHOME", "PYTHONPATH")
    }
    env.update(HOME=str(home), PATH=FRESH_PATH)
    return env


def test_a_busy_port_is_refused_before_anything_is_made(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with socket.socket() as taken:
        taken.bind((HOST, 0))
        taken.listen()
        port = taken.getsockname()[1]
        started = time.monotonic()
        result = subprocess.run(
            nimbus_up_command(state, port),
            env={**os.environ, "NIMBUS_CONFIG_FILE": ""},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        took = time.monotonic() - started
    assert result.returncode != 0, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"{HOST}:{port}" in lines[0] and "--port" in lines[0], lines[0]
    assert "Traceback" not in result.stderr
    assert not state.exists(), sorted(p.name for p in state.rglob("*"))
    assert took < 15, f"nimbus up took {took:.1f}s to refuse the port"


def test_a_free_port_is_not_refused() -> None:
    from nimbus.cmd import up

    port = free_port()
    assert up.port_problem(HOST, port) is None
    with socket.socket() as taken:
        taken.bind((HOST, port))
        taken.listen()
        assert up.port_problem(HOST, port) == os.strerror(errno.EADDRINUSE)


def _walkthrough() -> str:
    """Return the shell lines of the README's "Using the cloud" section that run as written.

    The one that needs an image's id, and another user, is left out.
    """
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Using the cloud", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, flags=re.S)
    lines = [line for block in blocks for line in block.splitlines()]
    return "\n".join(line for line in lines if "<" not in line)


@pytest.mark.skipif(
    not os.access(os.path.join(sysconfig.get_path("scripts"), "openstack"), os.X_OK),
    reason="python-openstackclient is not installed beside nimbus (the client extra)",
)
def test_the_readme_walkthrough_runs_as_written(tmp_path: Path) -> None:
    home = tmp_path / "home"
    work = tmp_path / "work"
    work.mkdir()
    # The README's default state directory, in the new user's home.
    state = home / ".nimbus" / "state"
    script = "set -eux\n" + _walkthrough() + "\ncommand -v openstack\n"
    assert "source ~/.nimbus/state/openrc" in script
    with nimbus_up(
        state, log_path=tmp_path / "up.log", env={"NIMBUS_CONFIG_FILE": "", "HOME": str(home)}
    ):
        result = subprocess.run(
            ["bash", "-c", script],
            cwd=work,
            env=_fresh_env(home),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    assert result.returncode == 0, f"{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    found = result.stdout.strip().splitlines()[-1]
    assert found == os.path.join(sysconfig.get_path("scripts"), "openstack")
    assert (work / "out.img").read_bytes() == (work / "small.raw").read_bytes()
