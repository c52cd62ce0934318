"""Fixtures shared by every test level."""

from __future__ import annotations

import pytest
from oslo_config import cfg

from nimbus.conf import new_config
from nimbus.testing import services


@pytest.fixture
def conf(tmp_path) -> cfg.ConfigOpts:
    """A fresh nimbus config whose state lives in a temporary directory."""
    config = new_config()
    config([], default_config_files=[])
    config.set_override("state_path", str(tmp_path / "state"))
    # Tests hash many passwords; production keeps the default cost.
    config.set_override("password_hash_rounds", 4, group="identity")
    return config


@pytest.fixture
def mariadb_url() -> str:
    """URL of the real MariaDB on this machine (skips or fails when absent)."""
    return services.require_service("MariaDB", services.MARIADB_URL, 3306)


@pytest.fixture
def postgresql_url() -> str:
    """URL of the real PostgreSQL on this machine (skips or fails when absent)."""
    return services.require_service("PostgreSQL", services.POSTGRESQL_URL, 5432)


@pytest.fixture
def rabbit_url() -> str:
    """URL of the real RabbitMQ on this machine (skips or fails when absent)."""
    return services.require_service("RabbitMQ", services.RABBIT_URL, 5672)
