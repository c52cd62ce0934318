"""The ``fake`` identity back-end against the contract, plus its own extras."""

from __future__ import annotations

import inspect
from typing import ClassVar

import bcrypt
import pytest
from oslo_config import cfg
from stevedore import DriverManager
from stevedore.extension import Extension

from nimbus import exception, registry
from nimbus.drivers.identity import Capability, IdentityDriver, ListQuery
from nimbus.drivers.identity.base import OPTIONAL_OPERATIONS
from nimbus.drivers.identity.fake import FakeIdentityDriver
from nimbus.testing.identity import (
    FakeClock,
    IdentityDriverContract,
    assert_unsupported,
    without_capability,
)


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


class ReadOnlyFake(FakeIdentityDriver):
    """The fake back-end, reading only."""

    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.GROUPS, Capability.LOCKOUT}
    )


def test_a_narrower_subclass_refuses_what_it_inherits(conf: cfg.ConfigOpts) -> None:
    # Injected as a test-only driver, the way a service would get it.
    manager = DriverManager.make_test_instance(
        Extension("read-only", None, ReadOnlyFake, ReadOnlyFake(conf)),
        namespace="nimbus.identity.backends",
    )
    driver = manager.driver
    assert_unsupported(driver, Capability.WRITE_USERS)
    assert_unsupported(driver, Capability.WRITE_GROUPS)
    # What it still declares works.
    assert driver.list_groups(ListQuery()) == []


def test_the_contract_check_fails_for_a_driver_ignoring_its_capabilities(
    conf: cfg.ConfigOpts,
) -> None:
    class Careless(ReadOnlyFake):
        """A read-only fake whose create_user runs anyway."""

    # Set after the class is made, so the base class never guarded it.
    Careless.create_user = inspect.unwrap(FakeIdentityDriver.create_user)  # type: ignore[method-assign]
    with pytest.raises(pytest.fail.Exception, match="create_user"):
        assert_unsupported(Careless(conf), Capability.WRITE_USERS)


def test_a_copy_without_a_capability_shares_the_data(conf: cfg.ConfigOpts) -> None:
    driver = FakeIdentityDriver(conf)
    user = driver.create_user(name="u", domain_id="d")
    copy = without_capability(driver, Capability.GROUPS)
    assert copy.capabilities == {Capability.WRITE_USERS, Capability.LOCKOUT}
    assert copy.get_user(user.id) == user
    assert isinstance(copy, FakeIdentityDriver)
    assert driver.capabilities == frozenset(Capability)


def test_every_optional_operation_is_guarded() -> None:
    optional = {
        name
        for name, member in vars(IdentityDriver).items()
        if inspect.isfunction(member)
        and not name.startswith("_")
        and not getattr(member, "__isabstractmethod__", False)
    }
    assert optional == set(OPTIONAL_OPERATIONS)
