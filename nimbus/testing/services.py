"""Find the real services an integration test needs, or skip (or fail) clearly."""

from __future__ import annotations

import importlib
import os
import shutil
import socket
from types import ModuleType
from urllib.parse import urlsplit

import pytest

__all__ = [
    "MARIADB_URL",
    "POSTGRESQL_URL",
    "RABBIT_URL",
    "require_module",
    "require_program",
    "require_service",
    "services_required",
]

MARIADB_URL = os.environ.get("NIMBUS_TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/test")
POSTGRESQL_URL = os.environ.get(
    "NIMBUS_TEST_POSTGRESQL_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
RABBIT_URL = os.environ.get("NIMBUS_TEST_RABBIT_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")


def services_required() -> bool:
    """Tell whether a missing service must fail the test instead of skipping it."""
    return os.environ.get("NIMBUS_REQUIRE_SERVICES", "") not in ("", "0", "false", "no")


def _reachable(url: str, default_port: int) -> tuple[bool, str]:
    parts = urlsplit(url.replace("+pymysql", "").replace("+psycopg", ""))
    host = parts.hostname or "127.0.0.1"
    port = parts.port or default_port
    try:
        with socket.create_connection((host, port), timeout=2):
            return True, ""
    except OSError as ex:
        return False, f"{host}:{port} is not reachable ({ex})"


def require_service(name: str, url: str, default_port: int) -> str:
    """Return *url* when the service answers; otherwise skip, or fail when required."""
    ok, why = _reachable(url, default_port)
    if not ok:
        message = f"{name} needed: {why}"
        if services_required():
            pytest.fail(message + " (NIMBUS_REQUIRE_SERVICES is set)")
        pytest.skip(message)
    return url


def _missing(message: str) -> None:
    if services_required():
        pytest.fail(message + " (NIMBUS_REQUIRE_SERVICES is set)")
    pytest.skip(message)


def require_module(name: str, hint: str) -> ModuleType:
    """Return the module *name*; skip when it cannot be imported, or fail when required.

    :param name: the module to import (``libvirt``).
    :param hint: how to get it, for the skip reason.
    """
    try:
        return importlib.import_module(name)
    except ImportError as ex:
        _missing(f"Python module {name} needed ({ex}); {hint}")
        raise  # not reached: skip and fail raise


def require_program(name: str, hint: str) -> str:
    """Return the path of the program *name*; skip when missing, or fail when required."""
    path = shutil.which(name)
    if path is None:
        _missing(f"program {name} needed; {hint}")
        raise AssertionError("not reached")
    return path
