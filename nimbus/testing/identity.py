"""The contract every identity back-end must pass, nimbus's own and third parties'.

Subclass :class:`IdentityDriverContract` in a test module, name the subclass
``Test...`` and give it a ``driver`` fixture; pytest then runs every contract
test against that driver::

    import pytest
    from nimbus.conf import new_config
    from nimbus.testing.identity import IdentityDriverContract


    class TestMyDriver(IdentityDriverContract):
        @pytest.fixture
        def driver(self, clock):
            conf = new_config()
            conf([], default_config_files=[])
            conf.set_override("password_hash_rounds", 4, group="identity")
            return MyDriver(conf, now=clock)

What the fixture must return:

* a fresh back-end, built on a config object of its own (tests override
  ``[identity]`` options on ``driver.conf`` and read them at call time);
* built with ``now=clock`` when the back-end has
  :attr:`~nimbus.drivers.identity.types.Capability.LOCKOUT`, so that the
  lock-out tests can move time forward;
* holding no users or groups, except a back-end that cannot create them
  (no ``WRITE_USERS``, or ``GROUPS`` without ``WRITE_GROUPS``): that one must
  hold exactly :data:`SEED_USERS` and :data:`SEED_GROUPS` (set
  :attr:`IdentityDriverContract.seeded` to say so for a writable one).

Tests of optional operations run only when the driver's ``capabilities``
include them and are reported as skipped otherwise; a back-end that lacks
a capability must raise :class:`~nimbus.exception.OperationNotSupported`
for its operations, and that is tested too, for every capability that
guards an operation: on the driver itself when it lacks the capability,
and otherwise on a copy of it whose class declares one capability less
(the ``narrowed`` fixture, :func:`~nimbus.testing.capabilities.
without_capability`; override it if a shallow copy of your driver cannot
work).  :class:`~nimbus.drivers.identity.base.IdentityDriver` guards the
operations of every subclass, so that copy refuses what it inherits.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import datetime
import threading
from collections.abc import Callable, Iterator
from typing import Any, ClassVar, TypeVar

import pytest

from nimbus import exception
from nimbus.drivers.identity.base import OPTIONAL_OPERATIONS, IdentityDriver
from nimbus.drivers.identity.types import Capability, Group, ListQuery, User
from nimbus.testing import capabilities as _capabilities

__all__ = [
    "DEFAULT_DOMAIN",
    "LOCKOUT_ATTEMPTS",
    "LOCKOUT_DURATION",
    "OTHER_DOMAIN",
    "SEED_GROUPS",
    "SEED_USERS",
    "FakeClock",
    "IdentityDriverContract",
    "SeedGroup",
    "SeedUser",
    "assert_unsupported",
    "needs",
    "without_capability",
]

D = TypeVar("D", bound=IdentityDriver)

#: The domain most seed users live in.
DEFAULT_DOMAIN = "default"
#: A second domain, to show that names are unique per domain only.
OTHER_DOMAIN = "other"


def _fail_logins(driver: IdentityDriver, user_id: str, times: int) -> None:
    """Fail to log in as *user_id* *times* times, each refused."""
    for _ in range(times):
        with pytest.raises(exception.AuthenticationFailed):
            driver.authenticate(user_id, "wrong")


@dataclasses.dataclass(frozen=True)
class SeedUser:
    """A user every back-end under test holds (or creates) before a test."""

    key: str
    name: str
    domain_id: str
    password: str | None
    enabled: bool = True
    default_project_id: str | None = None
    description: str | None = None
    email: str | None = None
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    def attrs(self) -> dict[str, Any]:
        """Return the optional attributes, as ``create_user`` takes them."""
        return {
            "enabled": self.enabled,
            "default_project_id": self.default_project_id,
            "description": self.description,
            "email": self.email,
            "extra": dict(self.extra),
        }


@dataclasses.dataclass(frozen=True)
class SeedGroup:
    """A group of seed users, named by their keys."""

    key: str
    name: str
    domain_id: str
    members: tuple[str, ...] = ()
    description: str | None = None
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)


#: The users of the contract tests; ``password`` is in clear text.
SEED_USERS: tuple[SeedUser, ...] = (
    SeedUser(
        key="alice",
        name="alice",
        domain_id=DEFAULT_DOMAIN,
        password="correct horse battery staple",
        default_project_id="p-alice",
        description="Alice from accounting",
        email="alice@example.org",
        extra={"team": "blue", "level": 3},
    ),
    SeedUser(
        key="bob", name="bob", domain_id=DEFAULT_DOMAIN, password="bob's s3cret", enabled=False
    ),
    SeedUser(key="carol", name="carol", domain_id=DEFAULT_DOMAIN, password="carol-pw"),
    # Longer than bcrypt's 72 bytes, and not ASCII.
    SeedUser(key="zoe", name="zoë", domain_id=DEFAULT_DOMAIN, password="pässwörd-" * 10),
    SeedUser(key="nopass", name="nopass", domain_id=DEFAULT_DOMAIN, password=None),
    SeedUser(key="alice2", name="alice", domain_id=OTHER_DOMAIN, password="another alice"),
)

#: The groups of the contract tests.
SEED_GROUPS: tuple[SeedGroup, ...] = (
    SeedGroup(
        key="admins",
        name="admins",
        domain_id=DEFAULT_DOMAIN,
        members=("alice",),
        description="Cloud administrators",
        extra={"tier": 1},
    ),
    SeedGroup(
        key="staff", name="staff", domain_id=DEFAULT_DOMAIN, members=("alice", "bob", "carol")
    ),
    SeedGroup(key="empty", name="empty", domain_id=DEFAULT_DOMAIN),
    SeedGroup(key="admins2", name="admins", domain_id=OTHER_DOMAIN, members=("alice2",)),
)

_SEED_USERS = {seed.key: seed for seed in SEED_USERS}

#: What the lock-out tests configure.
LOCKOUT_ATTEMPTS = 3
LOCKOUT_DURATION = 60


class FakeClock:
    """A clock that moves only when told: pass it as a back-end's ``now``."""

    def __init__(self, start: datetime.datetime | None = None) -> None:
        self._now = start or datetime.datetime(2030, 1, 1, 12, 0, tzinfo=datetime.UTC)
        self._lock = threading.Lock()

    def __call__(self) -> datetime.datetime:
        """Return the current fake time (aware, UTC)."""
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        """Move the clock *seconds* forward."""
        with self._lock:
            self._now += datetime.timedelta(seconds=seconds)


#: Marks a test as needing capabilities; it is skipped without them.
needs = _capabilities.needs


#: Harmless arguments for each optional operation, for the unsupported checks.
_OPTIONAL_CALLS: dict[str, _capabilities.Call] = {
    "create_user": ((), {"name": "x", "domain_id": DEFAULT_DOMAIN, "password": "p"}),
    "update_user": (("some-id",), {"description": "x"}),
    "delete_user": (("some-id",), {}),
    "get_group": (("some-id",), {}),
    "list_groups": ((ListQuery(),), {}),
    "list_groups_for_user": (("some-id",), {}),
    "list_users_in_group": (("some-id", ListQuery()), {}),
    "create_group": ((), {"name": "x", "domain_id": DEFAULT_DOMAIN}),
    "update_group": (("some-id",), {"description": "x"}),
    "delete_group": (("some-id",), {}),
    "add_user_to_group": (("some-id", "other-id"), {}),
    "remove_user_from_group": (("some-id", "other-id"), {}),
}

#: The capabilities that guard operations, each tested on its own.
_GUARDS = sorted(set(OPTIONAL_OPERATIONS.values()), key=lambda cap: cap.value)


def assert_unsupported(driver: IdentityDriver, capability: Capability) -> None:
    """Check that each operation needing *capability* raises ``OperationNotSupported``.

    :param driver: a back-end whose ``capabilities`` lack *capability*.
    :raises pytest.fail.Exception: an operation ran instead.
    """
    _capabilities.assert_unsupported(driver, capability, OPTIONAL_OPERATIONS, _OPTIONAL_CALLS)


def without_capability(driver: D, capability: Capability) -> D:
    """Return a copy of *driver* that declares *capability* no more.

    ``WRITE_GROUPS`` goes with ``GROUPS``, as it needs it.

    :param driver: the back-end to copy; the copy shares its state.
    """
    dropped = {capability}
    if capability is Capability.GROUPS:
        dropped.add(Capability.WRITE_GROUPS)
    return _capabilities.without_capability(driver, dropped)


def _ids(entries: list[Any]) -> list[str]:
    return [entry.id for entry in entries]


class IdentityDriverContract:
    """Contract tests of :class:`~nimbus.drivers.identity.base.IdentityDriver`.

    Subclasses provide the ``driver`` fixture (see the module docstring).
    """

    #: True when the ``driver`` fixture returns a back-end already holding
    #: the seed data although it could create it.
    seeded: ClassVar[bool] = False
    #: Threads, and failed logins per thread, of the concurrent lock-out test.
    concurrent_threads: ClassVar[int] = 8
    concurrent_attempts: ClassVar[int] = 5

    # -- fixtures -----------------------------------------------------------

    @pytest.fixture
    def driver(self) -> IdentityDriver:
        """The back-end under test: subclasses must override this fixture."""
        raise NotImplementedError("the contract subclass must provide a 'driver' fixture")

    @pytest.fixture
    def clock(self) -> FakeClock:
        """A fake clock for the ``driver`` fixture to pass as ``now=``."""
        return FakeClock()

    @pytest.fixture
    def narrowed(self, driver: IdentityDriver) -> Callable[[Capability], IdentityDriver]:
        """Return a factory of copies of *driver* that lack one capability."""
        return lambda capability: without_capability(driver, capability)

    @pytest.fixture(autouse=True)
    def _capability_gate(self, request: pytest.FixtureRequest) -> None:
        _capabilities.skip_unless_offered(request, "driver")

    @pytest.fixture
    def users(self, driver: IdentityDriver) -> dict[str, User]:
        """The seed users, by key: created now, or looked up in a seeded back-end."""
        if self.seeded or Capability.WRITE_USERS not in driver.capabilities:
            return {s.key: driver.get_user_by_name(s.name, s.domain_id) for s in SEED_USERS}
        return {
            s.key: driver.create_user(
                name=s.name, domain_id=s.domain_id, password=s.password, **s.attrs()
            )
            for s in SEED_USERS
        }

    @pytest.fixture
    def groups(self, driver: IdentityDriver, users: dict[str, User]) -> dict[str, Group]:
        """The seed groups, by key, with their members."""
        if self.seeded or Capability.WRITE_GROUPS not in driver.capabilities:
            found = {}
            for seed in SEED_GROUPS:
                query = ListQuery(name=seed.name, domain_id=seed.domain_id)
                (found[seed.key],) = driver.list_groups(query)
            return found
        created = {}
        for seed in SEED_GROUPS:
            group = driver.create_group(
                name=seed.name,
                domain_id=seed.domain_id,
                description=seed.description,
                extra=dict(seed.extra),
            )
            for member in seed.members:
                driver.add_user_to_group(users[member].id, group.id)
            created[seed.key] = group
        return created

    @pytest.fixture
    def lockout(self, driver: IdentityDriver) -> Iterator[int]:
        """Turn lock-out on: :data:`LOCKOUT_ATTEMPTS` failures, :data:`LOCKOUT_DURATION` s."""
        conf = driver.conf
        conf.set_override("lockout_failure_attempts", LOCKOUT_ATTEMPTS, group="identity")
        conf.set_override("lockout_duration", LOCKOUT_DURATION, group="identity")
        yield LOCKOUT_ATTEMPTS
        conf.clear_override("lockout_failure_attempts", group="identity")
        conf.clear_override("lockout_duration", group="identity")

    @pytest.fixture
    def short_passwords(self, driver: IdentityDriver) -> Iterator[int]:
        """Limit passwords to 16 characters."""
        driver.conf.set_override("max_password_length", 16, group="identity")
        yield 16
        driver.conf.clear_override("max_password_length", group="identity")

    # -- the class itself -----------------------------------------------------

    def test_is_an_identity_driver(self, driver: IdentityDriver) -> None:
        assert isinstance(driver, IdentityDriver)

    def test_summary_line(self, driver: IdentityDriver) -> None:
        # ``nimbus plugins`` prints the first docstring line to operators.
        doc = (type(driver).__doc__ or "").strip()
        assert doc, "the driver class needs a docstring"
        first = doc.splitlines()[0].strip()
        assert first.endswith("."), first
        assert len(first) <= 79, first

    def test_capabilities_are_consistent(self, driver: IdentityDriver) -> None:
        caps = type(driver).capabilities
        assert isinstance(caps, frozenset)
        assert all(isinstance(cap, Capability) for cap in caps)
        if Capability.WRITE_GROUPS in caps:
            assert Capability.GROUPS in caps, "WRITE_GROUPS needs GROUPS"

    @pytest.mark.parametrize("capability", _GUARDS, ids=lambda cap: cap.value)
    def test_missing_capability_raises_operation_not_supported(
        self,
        driver: IdentityDriver,
        narrowed: Callable[[Capability], IdentityDriver],
        capability: Capability,
    ) -> None:
        # A back-end that offers the capability is checked through a copy
        # that drops it, so the rule is tested on every back-end.
        lacking = narrowed(capability) if capability in driver.capabilities else driver
        assert_unsupported(lacking, capability)

    # -- reading users ----------------------------------------------------------

    def test_get_user(self, driver: IdentityDriver, users: dict[str, User]) -> None:
        for key, user in users.items():
            seed = _SEED_USERS[key]
            fetched = driver.get_user(user.id)
            assert fetched == user
            assert (fetched.name, fetched.domain_id) == (seed.name, seed.domain_id)
            assert fetched.enabled is seed.enabled
            assert fetched.default_project_id == seed.default_project_id
            assert fetched.description == seed.description
            assert fetched.email == seed.email
            assert fetched.extra == seed.extra
            assert fetched.password_expires_at is None or isinstance(
                fetched.password_expires_at, datetime.datetime
            )

    def test_ids_are_short_distinct_strings(self, users: dict[str, User]) -> None:
        ids = _ids(list(users.values()))
        assert all(isinstance(id_, str) and 0 < len(id_) <= 64 for id_ in ids)
        assert len(set(ids)) == len(ids)

    def test_password_never_comes_back(self, users: dict[str, User]) -> None:
        for key, user in users.items():
            password = _SEED_USERS[key].password
            assert not hasattr(user, "password")
            assert "$2b$" not in repr(user)
            if password:
                assert password not in repr(user)

    def test_get_user_unknown(self, driver: IdentityDriver, users: dict[str, User]) -> None:
        with pytest.raises(exception.NotFound) as info:
            driver.get_user("no-such-user")
        assert info.value.kwargs == {"kind": "user", "id": "no-such-user"}

    def test_get_user_by_name(self, driver: IdentityDriver, users: dict[str, User]) -> None:
        assert driver.get_user_by_name("alice", DEFAULT_DOMAIN) == users["alice"]
        assert driver.get_user_by_name("alice", OTHER_DOMAIN) == users["alice2"]
        assert driver.get_user_by_name("zoë", DEFAULT_DOMAIN) == users["zoe"]

    def test_get_user_by_name_unknown(self, driver: IdentityDriver, users: dict[str, User]) -> None:
        with pytest.raises(exception.NotFound):
            driver.get_user_by_name("mallory", DEFAULT_DOMAIN)
        with pytest.raises(exception.NotFound):
            driver.get_user_by_name("carol", OTHER_DOMAIN)

    def test_list_users_sorted_by_id(self, driver: IdentityDriver, users: dict[str, User]) -> None:
        listed = driver.list_users(ListQuery())
        assert _ids(listed) == sorted(user.id for user in users.values())
        assert {user.id: user for user in listed} == {user.id: user for user in users.values()}

    def test_list_users_filters(self, driver: IdentityDriver, users: dict[str, User]) -> None:
        def ids(*keys: str) -> list[str]:
            return sorted(users[key].id for key in keys)

        assert _ids(driver.list_users(ListQuery(domain_id=OTHER_DOMAIN))) == ids("alice2")
        assert _ids(driver.list_users(ListQuery(name="alice"))) == ids("alice", "alice2")
        assert _ids(driver.list_users(ListQuery(name="alice", domain_id=DEFAULT_DOMAIN))) == ids(
            "alice"
        )
        assert _ids(driver.list_users(ListQuery(enabled=False))) == ids("bob")
        assert _ids(driver.list_users(ListQuery(enabled=True, domain_id=DEFAULT_DOMAIN))) == ids(
            "alice", "carol", "zoe", "nopass"
        )
        wanted = frozenset({users["bob"].id, users["carol"].id, "no-such-user"})
        assert _ids(driver.list_users(ListQuery(ids=wanted))) == ids("bob", "carol")
        assert driver.list_users(ListQuery(ids=frozenset())) == []
        assert driver.list_users(ListQuery(name="mallory")) == []
        assert driver.list_users(ListQuery(domain_id="no-such-domain")) == []

    def test_list_users_pages(self, driver: IdentityDriver, users: dict[str, User]) -> None:
        everyone = _ids(driver.list_users(ListQuery()))
        assert _ids(driver.list_users(ListQuery(limit=2))) == everyone[:2]
        seen: list[str] = []
        marker = None
        while True:
            page = driver.list_users(ListQuery(limit=2, marker=marker))
            assert len(page) <= 2
            if not page:
                break
            seen += _ids(page)
            marker = page[-1].id
        assert seen == everyone
        assert driver.list_users(ListQuery(marker=everyone[-1])) == []
        assert _ids(driver.list_users(ListQuery(marker=everyone[0]))) == everyone[1:]

    def test_list_users_pages_with_filters(
        self, driver: IdentityDriver, users: dict[str, User]
    ) -> None:
        enabled = _ids(driver.list_users(ListQuery(enabled=True)))
        first = driver.list_users(ListQuery(enabled=True, limit=1))
        rest = driver.list_users(ListQuery(enabled=True, marker=first[0].id))
        assert _ids(first) + _ids(rest) == enabled

    # -- authenticating ---------------------------------------------------------

    def test_authenticate(self, driver: IdentityDriver, users: dict[str, User]) -> None:
        for key, user in users.items():
            password = _SEED_USERS[key].password
            if password is not None:
                assert driver.authenticate(user.id, password) == user

    def test_authenticate_returns_disabled_users(
        self, driver: IdentityDriver, users: dict[str, User]
    ) -> None:
        user = driver.authenticate(users["bob"].id, "bob's s3cret")
        assert user.enabled is False

    def test_authenticate_wrong_password(
        self, driver: IdentityDriver, users: dict[str, User]
    ) -> None:
        for wrong in ("wrong", "", "Correct horse battery staple", "correct horse battery"):
            with pytest.raises(exception.AuthenticationFailed):
                driver.authenticate(users["alice"].id, wrong)
        with pytest.raises(exception.AuthenticationFailed):
            # A user's password does not open another domain's namesake.
            driver.authenticate(users["alice2"].id, "correct horse battery staple")

    def test_authenticate_without_password(
        self, driver: IdentityDriver, users: dict[str, User]
    ) -> None:
        for attempt in ("", "None", "nopass"):
            with pytest.raises(exception.AuthenticationFailed):
                driver.authenticate(users["nopass"].id, attempt)

    def test_authenticate_does_not_tell_unknown_users(
        self, driver: IdentityDriver, users: dict[str, User]
    ) -> None:
        with pytest.raises(exception.AuthenticationFailed) as unknown:
            driver.authenticate("no-such-user", "whatever")
        with pytest.raises(exception.AuthenticationFailed) as wrong:
            driver.authenticate(users["alice"].id, "whatever")
        assert type(unknown.value) is type(wrong.value)
        assert str(unknown.value) == str(wrong.value)
        assert unknown.value.kwargs == wrong.value.kwargs
        assert "whatever" not in str(unknown.value)

    @needs(Capability.LOCKOUT)
    def test_lockout(self, driver: IdentityDriver, users: dict[str, User], lockout: int) -> None:
        alice = users["alice"].id
        _fail_logins(driver, alice, lockout)
        with pytest.raises(exception.UserLockedOut):
            driver.authenticate(alice, "correct horse battery staple")
        with pytest.raises(exception.UserLockedOut):
            driver.authenticate(alice, "wrong")
        # Others are not affected.
        assert driver.authenticate(users["carol"].id, "carol-pw") == users["carol"]

    @needs(Capability.LOCKOUT)
    def test_a_locked_account_looks_like_a_wrong_password(
        self, driver: IdentityDriver, users: dict[str, User], lockout: int
    ) -> None:
        _fail_logins(driver, users["alice"].id, lockout)
        with pytest.raises(exception.UserLockedOut) as locked:
            driver.authenticate(users["alice"].id, "correct horse battery staple")
        with pytest.raises(exception.AuthenticationFailed) as unknown:
            driver.authenticate("no-such-user", "whatever")
        assert isinstance(locked.value, exception.AuthenticationFailed)
        assert str(locked.value) == str(unknown.value)
        assert users["alice"].id not in str(locked.value)

    @needs(Capability.LOCKOUT)
    def test_ignored_users_are_never_locked(
        self, driver: IdentityDriver, users: dict[str, User], lockout: int
    ) -> None:
        alice = users["alice"].id
        driver.conf.set_override("lockout_ignored_user_ids", [alice], group="identity")
        try:
            _fail_logins(driver, alice, lockout * 3)
            assert driver.authenticate(alice, "correct horse battery staple").id == alice
            # Everyone else still is.
            _fail_logins(driver, users["carol"].id, lockout)
            with pytest.raises(exception.UserLockedOut):
                driver.authenticate(users["carol"].id, "carol-pw")
        finally:
            driver.conf.clear_override("lockout_ignored_user_ids", group="identity")

    @needs(Capability.LOCKOUT)
    def test_concurrent_guesses_past_the_limit_are_not_checked(
        self, driver: IdentityDriver, users: dict[str, User], lockout: int
    ) -> None:
        """Of many wrong guesses at once, exactly the limit's worth get a password check."""
        carol = users["carol"].id
        threads = self.concurrent_threads
        barrier = threading.Barrier(threads)

        def guess() -> list[bool]:
            barrier.wait(timeout=30)
            locked = []
            for _ in range(lockout):
                with pytest.raises(exception.AuthenticationFailed) as info:
                    driver.authenticate(carol, "wrong")
                locked.append(isinstance(info.value, exception.UserLockedOut))
            return locked

        with concurrent.futures.ThreadPoolExecutor(threads) as pool:
            futures = [pool.submit(guess) for _ in range(threads)]
            outcomes = [x for future in futures for x in future.result(timeout=120)]
        assert len(outcomes) == threads * lockout
        assert outcomes.count(False) == lockout, "only the limit's worth may be checked"

    @needs(Capability.LOCKOUT)
    def test_lockout_ends_after_duration(
        self, driver: IdentityDriver, users: dict[str, User], lockout: int, clock: FakeClock
    ) -> None:
        alice = users["alice"].id
        _fail_logins(driver, alice, lockout)
        clock.advance(LOCKOUT_DURATION - 1)
        with pytest.raises(exception.UserLockedOut):
            driver.authenticate(alice, "correct horse battery staple")
        clock.advance(2)
        assert driver.authenticate(alice, "correct horse battery staple").id == alice

    @needs(Capability.LOCKOUT)
    def test_expired_lockout_starts_a_new_count(
        self, driver: IdentityDriver, users: dict[str, User], lockout: int, clock: FakeClock
    ) -> None:
        alice = users["alice"].id
        _fail_logins(driver, alice, lockout)
        clock.advance(LOCKOUT_DURATION + 1)
        _fail_logins(driver, alice, lockout - 1)
        assert driver.authenticate(alice, "correct horse battery staple").id == alice

    @needs(Capability.LOCKOUT)
    def test_success_resets_the_count(
        self, driver: IdentityDriver, users: dict[str, User], lockout: int
    ) -> None:
        alice = users["alice"].id
        for _ in range(2):
            _fail_logins(driver, alice, lockout - 1)
            assert driver.authenticate(alice, "correct horse battery staple").id == alice

    @needs(Capability.LOCKOUT)
    def test_unknown_users_are_never_locked(
        self, driver: IdentityDriver, users: dict[str, User], lockout: int
    ) -> None:
        for _ in range(lockout + 2):
            with pytest.raises(exception.AuthenticationFailed) as info:
                driver.authenticate("no-such-user", "wrong")
            assert not isinstance(info.value, exception.UserLockedOut)

    def test_no_lockout_when_disabled(self, driver: IdentityDriver, users: dict[str, User]) -> None:
        # lockout_failure_attempts is 0 by default (and for back-ends
        # without LOCKOUT, whatever it is).
        if Capability.LOCKOUT not in driver.capabilities:
            driver.conf.set_override("lockout_failure_attempts", 2, group="identity")
        try:
            _fail_logins(driver, users["carol"].id, LOCKOUT_ATTEMPTS + 3)
            assert driver.authenticate(users["carol"].id, "carol-pw") == users["carol"]
        finally:
            driver.conf.clear_override("lockout_failure_attempts", group="identity")

    @needs(Capability.LOCKOUT)
    def test_concurrent_failures_all_count(
        self, driver: IdentityDriver, users: dict[str, User]
    ) -> None:
        """Failures from many threads at once are counted exactly, none lost."""
        total = self.concurrent_threads * self.concurrent_attempts
        # One failure short of the limit: any lost update leaves the user
        # unlocked after the last, sequential failure below.
        driver.conf.set_override("lockout_failure_attempts", total + 1, group="identity")
        try:
            carol = users["carol"].id
            barrier = threading.Barrier(self.concurrent_threads)

            def fail_repeatedly() -> int:
                barrier.wait(timeout=30)
                failed = 0
                for _ in range(self.concurrent_attempts):
                    with pytest.raises(exception.AuthenticationFailed):
                        driver.authenticate(carol, "wrong")
                    failed += 1
                return failed

            with concurrent.futures.ThreadPoolExecutor(self.concurrent_threads) as pool:
                futures = [pool.submit(fail_repeatedly) for _ in range(self.concurrent_threads)]
                assert sum(future.result(timeout=120) for future in futures) == total
            with pytest.raises(exception.AuthenticationFailed):
                driver.authenticate(carol, "wrong")
            with pytest.raises(exception.UserLockedOut):
                driver.authenticate(carol, "carol-pw")
        finally:
            driver.conf.clear_override("lockout_failure_attempts", group="identity")

    # -- writing users ------------------------------------------------------------

    @needs(Capability.WRITE_USERS)
    def test_create_user(self, driver: IdentityDriver) -> None:
        user = driver.create_user(
            name="dave",
            domain_id=DEFAULT_DOMAIN,
            password="dave-pw",
            email="dave@example.org",
            description="Dave",
            default_project_id="p-dave",
            extra={"shoe size": 44},
            enabled=False,
        )
        assert (user.name, user.domain_id, user.email) == (
            "dave",
            DEFAULT_DOMAIN,
            "dave@example.org",
        )
        assert (user.description, user.default_project_id) == ("Dave", "p-dave")
        assert user.extra == {"shoe size": 44}
        assert user.enabled is False
        assert driver.get_user(user.id) == user
        assert driver.authenticate(user.id, "dave-pw") == user

    @needs(Capability.WRITE_USERS)
    def test_create_user_defaults(self, driver: IdentityDriver) -> None:
        user = driver.create_user(name="erin", domain_id=DEFAULT_DOMAIN)
        assert user.enabled is True
        assert user.extra == {}
        assert user.email is user.description is user.default_project_id is None
        with pytest.raises(exception.AuthenticationFailed):
            driver.authenticate(user.id, "")

    @needs(Capability.WRITE_USERS)
    def test_create_user_ids_are_new(self, driver: IdentityDriver) -> None:
        first = driver.create_user(name="u1", domain_id=DEFAULT_DOMAIN)
        second = driver.create_user(name="u2", domain_id=DEFAULT_DOMAIN)
        assert first.id != second.id

    @needs(Capability.WRITE_USERS)
    def test_create_user_name_taken(self, driver: IdentityDriver, users: dict[str, User]) -> None:
        with pytest.raises(exception.Conflict):
            driver.create_user(name="alice", domain_id=DEFAULT_DOMAIN, password="x")
        assert driver.get_user_by_name("alice", DEFAULT_DOMAIN) == users["alice"]
        # The same name in a third domain is another user.
        other = driver.create_user(name="alice", domain_id="third")
        assert other.id not in {user.id for user in users.values()}

    @needs(Capability.WRITE_USERS)
    def test_create_user_password_too_long(
        self, driver: IdentityDriver, short_passwords: int
    ) -> None:
        with pytest.raises(exception.ValidationError) as info:
            driver.create_user(name="frank", domain_id=DEFAULT_DOMAIN, password="x" * 17)
        assert "x" * 17 not in str(info.value)
        assert driver.list_users(ListQuery(name="frank")) == []
        user = driver.create_user(name="frank", domain_id=DEFAULT_DOMAIN, password="y" * 16)
        assert driver.authenticate(user.id, "y" * 16) == user

    @needs(Capability.WRITE_USERS)
    def test_update_user(self, driver: IdentityDriver, users: dict[str, User]) -> None:
        carol = users["carol"]
        updated = driver.update_user(
            carol.id,
            name="caroline",
            email="caroline@example.org",
            description="Carol, renamed",
            default_project_id="p-carol",
            extra={"k": "v"},
            enabled=False,
        )
        assert updated.id == carol.id
        assert (updated.name, updated.email) == ("caroline", "caroline@example.org")
        assert (updated.description, updated.default_project_id) == ("Carol, renamed", "p-carol")
        assert (updated.extra, updated.enabled) == ({"k": "v"}, False)
        assert driver.get_user(carol.id) == updated
        assert driver.get_user_by_name("caroline", DEFAULT_DOMAIN) == updated
        with pytest.raises(exception.NotFound):
            driver.get_user_by_name("carol", DEFAULT_DOMAIN)
        # The password is unchanged.
        assert driver.authenticate(carol.id, "carol-pw") == updated

    @needs(Capability.WRITE_USERS)
    def test_update_user_partial(self, driver: IdentityDriver, users: dict[str, User]) -> None:
        alice = users["alice"]
        updated = driver.update_user(alice.id, description=None)
        assert updated == dataclasses.replace(alice, description=None)
        assert driver.update_user(alice.id) == updated
        assert driver.update_user(alice.id, name="alice") == updated

    @needs(Capability.WRITE_USERS)
    def test_update_user_unknown(self, driver: IdentityDriver, users: dict[str, User]) -> None:
        with pytest.raises(exception.NotFound):
            driver.update_user("no-such-user", description="x")

    @needs(Capability.WRITE_USERS)
    def test_update_user_name_taken(self, driver: IdentityDriver, users: dict[str, User]) -> None:
        with pytest.raises(exception.Conflict):
            driver.update_user(users["carol"].id, name="alice")
        assert driver.get_user(users["carol"].id) == users["carol"]

    @needs(Capability.WRITE_USERS)
    def test_update_user_password(self, driver: IdentityDriver, users: dict[str, User]) -> None:
        alice = users["alice"].id
        driver.update_user(alice, password="new password")
        with pytest.raises(exception.AuthenticationFailed):
            driver.authenticate(alice, "correct horse battery staple")
        assert driver.authenticate(alice, "new password").id == alice
        # A user without a password can be given one.
        nopass = users["nopass"].id
        driver.update_user(nopass, password="at last")
        assert driver.authenticate(nopass, "at last").id == nopass

    @needs(Capability.WRITE_USERS)
    def test_update_user_password_too_long(
        self, driver: IdentityDriver, users: dict[str, User], short_passwords: int
    ) -> None:
        with pytest.raises(exception.ValidationError):
            driver.update_user(users["carol"].id, password="z" * 17)
        assert driver.authenticate(users["carol"].id, "carol-pw") == users["carol"]

    @needs(Capability.WRITE_USERS, Capability.LOCKOUT)
    def test_new_password_clears_lockout(
        self, driver: IdentityDriver, users: dict[str, User], lockout: int
    ) -> None:
        alice = users["alice"].id
        _fail_logins(driver, alice, lockout)
        with pytest.raises(exception.UserLockedOut):
            driver.authenticate(alice, "correct horse battery staple")
        driver.update_user(alice, password="fresh start")
        assert driver.authenticate(alice, "fresh start").id == alice

    @needs(Capability.WRITE_USERS)
    def test_delete_user(self, driver: IdentityDriver, users: dict[str, User]) -> None:
        carol = users["carol"]
        driver.delete_user(carol.id)
        with pytest.raises(exception.NotFound):
            driver.get_user(carol.id)
        with pytest.raises(exception.NotFound):
            driver.delete_user(carol.id)
        with pytest.raises(exception.AuthenticationFailed):
            driver.authenticate(carol.id, "carol-pw")
        assert carol.id not in _ids(driver.list_users(ListQuery()))
        # The name is free again.
        again = driver.create_user(name="carol", domain_id=DEFAULT_DOMAIN, password="carol-pw")
        assert again.id != carol.id

    @needs(Capability.WRITE_USERS)
    def test_delete_user_unknown(self, driver: IdentityDriver) -> None:
        with pytest.raises(exception.NotFound):
            driver.delete_user("no-such-user")

    # -- reading groups -----------------------------------------------------------

    @needs(Capability.GROUPS)
    def test_get_group(self, driver: IdentityDriver, groups: dict[str, Group]) -> None:
        for seed in SEED_GROUPS:
            group = driver.get_group(groups[seed.key].id)
            assert group == groups[seed.key]
            assert (group.name, group.domain_id) == (seed.name, seed.domain_id)
            assert (group.description, group.extra) == (seed.description, seed.extra)

    @needs(Capability.GROUPS)
    def test_get_group_unknown(self, driver: IdentityDriver, groups: dict[str, Group]) -> None:
        with pytest.raises(exception.NotFound) as info:
            driver.get_group("no-such-group")
        assert info.value.kwargs == {"kind": "group", "id": "no-such-group"}

    @needs(Capability.GROUPS)
    def test_list_groups(self, driver: IdentityDriver, groups: dict[str, Group]) -> None:
        def ids(*keys: str) -> list[str]:
            return sorted(groups[key].id for key in keys)

        assert _ids(driver.list_groups(ListQuery())) == ids(*groups)
        assert _ids(driver.list_groups(ListQuery(domain_id=OTHER_DOMAIN))) == ids("admins2")
        assert _ids(driver.list_groups(ListQuery(name="admins"))) == ids("admins", "admins2")
        wanted = frozenset({groups["empty"].id, "no-such-group"})
        assert _ids(driver.list_groups(ListQuery(ids=wanted))) == ids("empty")
        everyone = ids(*groups)
        first = driver.list_groups(ListQuery(limit=2))
        rest = driver.list_groups(ListQuery(marker=first[-1].id))
        assert _ids(first) + _ids(rest) == everyone

    @needs(Capability.GROUPS)
    def test_list_groups_for_user(
        self, driver: IdentityDriver, users: dict[str, User], groups: dict[str, Group]
    ) -> None:
        def ids(*keys: str) -> list[str]:
            return sorted(groups[key].id for key in keys)

        assert _ids(driver.list_groups_for_user(users["alice"].id)) == ids("admins", "staff")
        assert _ids(driver.list_groups_for_user(users["bob"].id)) == ids("staff")
        assert _ids(driver.list_groups_for_user(users["alice2"].id)) == ids("admins2")
        assert driver.list_groups_for_user(users["nopass"].id) == []

    @needs(Capability.GROUPS)
    def test_list_users_in_group(
        self, driver: IdentityDriver, users: dict[str, User], groups: dict[str, Group]
    ) -> None:
        def ids(*keys: str) -> list[str]:
            return sorted(users[key].id for key in keys)

        staff = groups["staff"].id
        assert _ids(driver.list_users_in_group(staff, ListQuery())) == ids("alice", "bob", "carol")
        assert _ids(driver.list_users_in_group(staff, ListQuery(enabled=True))) == ids(
            "alice", "carol"
        )
        assert _ids(driver.list_users_in_group(staff, ListQuery(name="bob"))) == ids("bob")
        assert driver.list_users_in_group(groups["empty"].id, ListQuery()) == []
        members = driver.list_users_in_group(staff, ListQuery(limit=2))
        assert _ids(members) == ids("alice", "bob", "carol")[:2]
        rest = driver.list_users_in_group(staff, ListQuery(marker=members[-1].id))
        assert _ids(members) + _ids(rest) == ids("alice", "bob", "carol")
        assert driver.list_users_in_group(staff, ListQuery(name="alice"))[0] == users["alice"]

    @needs(Capability.GROUPS)
    def test_list_users_in_unknown_group(
        self, driver: IdentityDriver, groups: dict[str, Group]
    ) -> None:
        with pytest.raises(exception.NotFound):
            driver.list_users_in_group("no-such-group", ListQuery())

    # -- writing groups -------------------------------------------------------------

    @needs(Capability.WRITE_GROUPS)
    def test_create_group(self, driver: IdentityDriver) -> None:
        group = driver.create_group(
            name="ops", domain_id=DEFAULT_DOMAIN, description="Operators", extra={"pager": True}
        )
        assert (group.name, group.domain_id, group.description) == (
            "ops",
            DEFAULT_DOMAIN,
            "Operators",
        )
        assert group.extra == {"pager": True}
        assert driver.get_group(group.id) == group
        bare = driver.create_group(name="bare", domain_id=DEFAULT_DOMAIN)
        assert (bare.description, bare.extra) == (None, {})
        assert bare.id != group.id

    @needs(Capability.WRITE_GROUPS)
    def test_create_group_name_taken(
        self, driver: IdentityDriver, groups: dict[str, Group]
    ) -> None:
        with pytest.raises(exception.Conflict):
            driver.create_group(name="staff", domain_id=DEFAULT_DOMAIN)
        driver.create_group(name="staff", domain_id=OTHER_DOMAIN)

    @needs(Capability.WRITE_GROUPS)
    def test_update_group(self, driver: IdentityDriver, groups: dict[str, Group]) -> None:
        staff = groups["staff"]
        updated = driver.update_group(staff.id, name="crew", description="All hands", extra={})
        assert (updated.id, updated.name, updated.description) == (staff.id, "crew", "All hands")
        assert driver.get_group(staff.id) == updated
        assert driver.update_group(staff.id) == updated

    @needs(Capability.WRITE_GROUPS)
    def test_update_group_errors(self, driver: IdentityDriver, groups: dict[str, Group]) -> None:
        with pytest.raises(exception.NotFound):
            driver.update_group("no-such-group", description="x")
        with pytest.raises(exception.Conflict):
            driver.update_group(groups["staff"].id, name="admins")

    @needs(Capability.WRITE_GROUPS)
    def test_delete_group(
        self, driver: IdentityDriver, users: dict[str, User], groups: dict[str, Group]
    ) -> None:
        staff = groups["staff"].id
        driver.delete_group(staff)
        with pytest.raises(exception.NotFound):
            driver.get_group(staff)
        with pytest.raises(exception.NotFound):
            driver.delete_group(staff)
        with pytest.raises(exception.NotFound):
            driver.list_users_in_group(staff, ListQuery())
        # The members stay, and lose only that membership.
        assert driver.get_user(users["bob"].id) == users["bob"]
        assert driver.list_groups_for_user(users["bob"].id) == []
        assert _ids(driver.list_groups_for_user(users["alice"].id)) == [groups["admins"].id]

    @needs(Capability.WRITE_USERS, Capability.WRITE_GROUPS)
    def test_delete_user_ends_memberships(
        self, driver: IdentityDriver, users: dict[str, User], groups: dict[str, Group]
    ) -> None:
        driver.delete_user(users["alice"].id)
        staff = driver.list_users_in_group(groups["staff"].id, ListQuery())
        assert _ids(staff) == sorted([users["bob"].id, users["carol"].id])
        assert driver.list_users_in_group(groups["admins"].id, ListQuery()) == []

    @needs(Capability.WRITE_GROUPS)
    def test_memberships(
        self, driver: IdentityDriver, users: dict[str, User], groups: dict[str, Group]
    ) -> None:
        empty, zoe = groups["empty"].id, users["zoe"].id
        driver.add_user_to_group(zoe, empty)
        driver.add_user_to_group(zoe, empty)  # idempotent
        assert _ids(driver.list_users_in_group(empty, ListQuery())) == [zoe]
        assert _ids(driver.list_groups_for_user(zoe)) == [empty]
        driver.remove_user_from_group(zoe, empty)
        assert driver.list_users_in_group(empty, ListQuery()) == []
        with pytest.raises(exception.NotFound):
            driver.remove_user_from_group(zoe, empty)

    @needs(Capability.WRITE_GROUPS)
    def test_membership_errors(
        self, driver: IdentityDriver, users: dict[str, User], groups: dict[str, Group]
    ) -> None:
        with pytest.raises(exception.NotFound):
            driver.add_user_to_group("no-such-user", groups["empty"].id)
        with pytest.raises(exception.NotFound):
            driver.add_user_to_group(users["alice"].id, "no-such-group")
        with pytest.raises(exception.NotFound):
            driver.remove_user_from_group(users["nopass"].id, groups["staff"].id)
        with pytest.raises(exception.NotFound):
            driver.remove_user_from_group("no-such-user", groups["staff"].id)
