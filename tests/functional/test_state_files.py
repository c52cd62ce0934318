"""``nimbus up`` keeps its secrets private: file modes, and nothing secret on screen."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from nimbus.testing.server import nimbus_up
from tests.functional._cloud import Cloud

pytestmark = pytest.mark.slow


def _loose(root: Path) -> list[str]:
    """Return the paths under *root* that anyone but the owner may read, write or enter."""
    found = []
    for path, dirs, files in os.walk(root):
        for name in [*dirs, *files, ""]:
            full = os.path.join(path, name)
            if stat.S_IMODE(os.lstat(full).st_mode) & 0o077:
                found.append(f"{full} {stat.filemode(os.lstat(full).st_mode)}")
    return found


def test_state_files_are_private_and_the_password_is_not_printed(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o755)
    state.chmod(0o755)
    (state / "notes.txt").write_text("left here by hand")
    (state / "notes.txt").chmod(0o644)
    log = tmp_path / "up.log"

    with nimbus_up(state, log_path=log) as server:
        cloud = Cloud(server)
        image_id = cloud.create_image("private")
        assert cloud.upload(image_id, b"some image data") == 204
        password = server.openrc()["OS_PASSWORD"]
        names = {p.name for p in state.rglob("*")}
        loose = _loose(state)

    assert {"nimbus.sqlite", "nimbus.sqlite-wal", "openrc", "admin-password"} <= names, names
    assert loose == []
    printed = log.read_text()
    assert password not in printed
    assert "openrc" in printed and "admin-password" in printed
