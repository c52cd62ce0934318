"""The real ``openstack`` client run against a :class:`~nimbus.testing.server.Server`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from nimbus.testing.server import Server

__all__ = ["OpenStackCLI"]

BIN = Path(sys.executable).parent


def _openstack() -> str:
    found = shutil.which("openstack", path=str(BIN)) or shutil.which("openstack")
    if found is None:
        pytest.fail("python-openstackclient is not installed (install the 'client' extra)")
    return found


class OpenStackCLI:
    """Runs ``openstack`` as the admin of a running ``nimbus up``, or as another user."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.admin_env = server.openrc()

    def run(
        self, *args: str, env: dict[str, str] | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run one command (as the admin unless *env* says otherwise).

        :param check: raise AssertionError, with the client's stderr, on failure.
        """
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
        full_env.update(env or self.admin_env)
        result = subprocess.run(
            [_openstack(), *args],
            env=full_env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"openstack {' '.join(args)} failed ({result.returncode}):\n{result.stderr}"
            )
        return result

    def json(self, *args: str, env: dict[str, str] | None = None) -> Any:
        """Run one command with ``-f json`` and return what it printed, parsed."""
        return json.loads(self.run(*args, "-f", "json", env=env).stdout)

    def as_user(self, name: str, password: str, project: str) -> dict[str, str]:
        """Return the client environment of another user, scoped to *project*."""
        return {
            **self.admin_env,
            "OS_USERNAME": name,
            "OS_PASSWORD": password,
            "OS_PROJECT_NAME": project,
        }
