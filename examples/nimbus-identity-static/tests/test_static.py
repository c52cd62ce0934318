"""The static back-end against nimbus's identity contract, plus its file checks."""

from __future__ import annotations

import functools
import json
import pathlib

import pytest
from nimbus import exception
from nimbus.common import passwords
from nimbus.conf import new_config
from nimbus.testing.identity import SEED_USERS, IdentityDriverContract
from oslo_config import cfg

from nimbus_identity_static import opts
from nimbus_identity_static.driver import StaticIdentityDriver


@functools.cache
def _hash(password: str) -> str:
    return passwords.hash_password(password, 4)


def _seed_entries() -> list[dict]:
    entries = []
    for seed in SEED_USERS:
        entry = {"id": f"user-{seed.key}", "name": seed.name, "domain_id": seed.domain_id}
        entry.update(seed.attrs())
        if seed.password is not None:
            entry["password_hash"] = _hash(seed.password)
        entries.append(entry)
    return entries


@pytest.fixture
def conf() -> cfg.ConfigOpts:
    config = new_config()
    config([], default_config_files=[])
    config.set_override("password_hash_rounds", 4, group="identity")
    opts.register_opts(config)
    return config


def _driver_for(conf: cfg.ConfigOpts, path: pathlib.Path, document: object) -> StaticIdentityDriver:
    path.write_text(json.dumps(document), encoding="utf-8")
    conf.set_override("users_file", str(path), group="identity_static")
    return StaticIdentityDriver(conf)


class TestStaticIdentityDriver(IdentityDriverContract):
    @pytest.fixture
    def driver(self, conf: cfg.ConfigOpts, tmp_path: pathlib.Path) -> StaticIdentityDriver:
        # Read-only: it must already hold the contract's seed users.
        return _driver_for(conf, tmp_path / "users.json", {"users": _seed_entries()})


@pytest.mark.parametrize(
    ("document", "complaint"),
    [
        ([], '"users" list'),
        ({"users": [{"id": "a", "name": "a"}]}, "domain_id"),
        ({"users": [{"id": "a", "name": "a", "domain_id": "d", "colour": "red"}]}, "colour"),
        ({"users": [{"id": "a", "name": "a", "domain_id": "d", "enabled": "yes"}]}, "enabled"),
        ({"users": [{"id": "a", "name": "a", "domain_id": "d"}] * 2}, "twice"),
        (
            {
                "users": [
                    {"id": "a", "name": "same", "domain_id": "d"},
                    {"id": "b", "name": "same", "domain_id": "d"},
                ]
            },
            "two users are named",
        ),
    ],
)
def test_bad_files_are_refused(
    conf: cfg.ConfigOpts, tmp_path: pathlib.Path, document: object, complaint: str
) -> None:
    with pytest.raises(exception.DriverError, match=complaint) as info:
        _driver_for(conf, tmp_path / "users.json", document)
    assert "StaticIdentityDriver" in str(info.value)


def test_missing_file_is_refused(conf: cfg.ConfigOpts, tmp_path: pathlib.Path) -> None:
    conf.set_override("users_file", str(tmp_path / "nowhere.json"), group="identity_static")
    with pytest.raises(exception.DriverError, match="cannot read it"):
        StaticIdentityDriver(conf)


def test_invalid_json_is_refused(conf: cfg.ConfigOpts, tmp_path: pathlib.Path) -> None:
    path = tmp_path / "users.json"
    path.write_text("{not json", encoding="utf-8")
    conf.set_override("users_file", str(path), group="identity_static")
    with pytest.raises(exception.DriverError, match="not valid JSON"):
        StaticIdentityDriver(conf)
