"""The ``fake`` identity back-end against the contract, plus its own extras."""

from __future__ import annotations

import bcrypt
import pytest
from oslo_config import cfg

from nimbus import exception, registry
from nimbus.drivers.identity import IdentityDriver
from nimbus.drivers.identity.fake import FakeIdentityDriver
from nimbus.testing.identity import FakeClock, IdentityDriverContract


class TestFakeIdentityDriver(IdentityDriverContract):
    @pytest.fixture
    def driver(self, conf: cfg.ConfigOpts, clock: FakeClock) -> FakeIdentityDriver:
        return FakeIdentityDriver(conf, now=clock)


def test_loads_through_its_entry_point(conf: cfg.ConfigOpts) -> None:
    driver = registry.load_driver("nimbus.identity.backends", "fake", conf, expected=IdentityDriver)
    assert isinstance(driver, FakeIdentityDriver)


def test_returned_users_are_copies(conf: cfg.ConfigOpts) -> None:
    driver = FakeIdentityDriver(conf)
    user = driver.create_user(name="u", domain_id="d", extra={"a": 1})
    user.extra["a"] = 2
    assert driver.get_user(user.id).extra == {"a": 1}


def test_unknown_attributes_are_rejected(conf: cfg.ConfigOpts) -> None:
    driver = FakeIdentityDriver(conf)
    with pytest.raises(exception.ValidationError):
        driver.create_user(name="u", domain_id="d", colour="red")
    user = driver.create_user(name="u", domain_id="d")
    for bad in ({"domain_id": "e"}, {"id": "x"}, {"name": ""}, {"colour": "red"}):
        with pytest.raises(exception.ValidationError):
            driver.update_user(user.id, **bad)


def test_unknown_users_cost_a_bcrypt_check(
    conf: cfg.ConfigOpts, monkeypatch: pytest.MonkeyPatch
) -> None:
    driver = FakeIdentityDriver(conf)
    user = driver.create_user(name="u", domain_id="d", password="pw")
    nopass = driver.create_user(name="n", domain_id="d")
    calls = []
    real = bcrypt.checkpw

    def counting(password: bytes, hashed: bytes) -> bool:
        calls.append(hashed)
        return real(password, hashed)

    monkeypatch.setattr(bcrypt, "checkpw", counting)
    for user_id in (user.id, "no-such-user", nopass.id):
        calls.clear()
        with pytest.raises(exception.AuthenticationFailed):
            driver.authenticate(user_id, "wrong")
        assert len(calls) == 1, user_id
