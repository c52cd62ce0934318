"""Tests of revocation events: the matching rules and the shared list."""

from __future__ import annotations

import dataclasses
import datetime
import random
import uuid

import pytest
import sqlalchemy as sa
from oslo_config import cfg

from nimbus import exception
from nimbus.common.changes import Change, Changes
from nimbus.db import migration
from nimbus.db.api import Database
from nimbus.identity import models
from nimbus.identity.token.formatter import TokenPayload, new_audit_id
from nimbus.identity.token.revoke import RevocationEvent, RevocationList, TokenValues, matches

UTC = datetime.UTC
T0 = datetime.datetime(2026, 11, 21, 20, 0, 0, 500000, tzinfo=UTC)
SECOND = datetime.timedelta(seconds=1)


class FakeClock:
    """Monotonic seconds that move only when a test says so."""

    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeNow:
    """Wall-clock time for new events."""

    def __init__(self, when: datetime.datetime) -> None:
        self.when = when

    def __call__(self) -> datetime.datetime:
        return self.when


def _values(**overrides) -> TokenValues:
    fields = dict(
        user_id="u1",
        project_id="p1",
        domain_id="d1",
        role_ids=frozenset({"r1", "r2"}),
        audit_id="a1",
        audit_chain_id="c1",
        issued_at=T0,
        expires_at=T0 + 3600 * SECOND,
    )
    fields.update(overrides)
    return TokenValues(**fields)


def _event(**attrs) -> RevocationEvent:
    attrs.setdefault("issued_before", T0)
    attrs.setdefault("revoked_at", T0)
    return RevocationEvent(**attrs)


# -- matching rules ---------------------------------------------------------------


@pytest.mark.parametrize(
    "attrs, expected",
    [
        ({"user_id": "u1"}, True),
        ({"user_id": "u2"}, False),
        ({"project_id": "p1"}, True),
        ({"project_id": "p2"}, False),
        ({"domain_id": "d1"}, True),
        ({"domain_id": "d2"}, False),
        ({"role_id": "r2"}, True),
        ({"role_id": "r3"}, False),
        ({"audit_id": "a1"}, True),
        ({"audit_id": "c1"}, False),
        ({"audit_chain_id": "c1"}, True),
        ({"audit_chain_id": "a1"}, False),
        ({"audit_id": "a1", "expires_at": T0 + 3600 * SECOND}, True),
        ({"audit_id": "a1", "expires_at": T0 + 3601 * SECOND}, False),
        ({"user_id": "u1", "project_id": "p1", "role_id": "r1"}, True),
        ({"user_id": "u1", "project_id": "p1", "role_id": "r9"}, False),
        ({"user_id": "u1", "project_id": "p9"}, False),
    ],
)
def test_every_set_attribute_must_equal_the_tokens(attrs: dict, expected: bool) -> None:
    assert matches(_event(**attrs), _values()) is expected


def test_a_domain_event_revokes_the_tokens_of_the_domains_users_too() -> None:
    event = _event(domain_id="home")

    assert matches(event, _values(domain_id="d1", user_domain_id="home"))
    assert matches(event, _values(domain_id="home", user_domain_id="other"))
    assert not matches(event, _values(domain_id="d1", user_domain_id="other"))
    assert not matches(_event(domain_id="home", project_id="p9"), _values(user_domain_id="home"))


def test_unset_attributes_match_anything() -> None:
    event = _event(user_id="u1")

    assert matches(event, _values(project_id=None, domain_id=None, role_ids=frozenset()))


def test_token_issued_at_issued_before_is_revoked_and_later_is_not() -> None:
    event = _event(user_id="u1", issued_before=T0)

    assert matches(event, _values(issued_at=T0 - SECOND))
    assert matches(event, _values(issued_at=T0))
    assert not matches(event, _values(issued_at=T0 + datetime.timedelta(microseconds=1)))


def test_role_event_needs_the_role_on_the_token() -> None:
    assert not matches(_event(role_id="r1"), _values(role_ids=frozenset()))


def test_a_mapping_is_accepted_as_token_values() -> None:
    mapping = dataclasses.asdict(_values())
    mapping["role_ids"] = {"r1"}

    assert matches(_event(role_id="r1"), mapping)
    assert not matches(_event(role_id="r2"), mapping)


def test_a_mapping_missing_a_key_is_refused() -> None:
    mapping = dataclasses.asdict(_values())
    del mapping["issued_at"]

    with pytest.raises(exception.ValidationError, match="issued_at"):
        matches(_event(user_id="u1"), mapping)


def test_token_values_from_payload() -> None:
    own, chain = new_audit_id(), new_audit_id()
    payload = TokenPayload(
        user_id="u1",
        methods=("token",),
        issued_at=T0,
        expires_at=T0 + SECOND,
        audit_ids=(own, chain),
        project_id="p1",
    )

    values = TokenValues.from_payload(payload, role_ids=["r1"], domain_id="d1")

    assert values == TokenValues(
        user_id="u1",
        project_id="p1",
        domain_id="d1",
        role_ids=frozenset({"r1"}),
        audit_id=own,
        audit_chain_id=chain,
        issued_at=T0,
        expires_at=T0 + SECOND,
    )


# -- the list on a real database -----------------------------------------------------


@pytest.fixture
def database(conf: cfg.ConfigOpts) -> Database:
    db = Database(conf)
    migration.upgrade(db)
    yield db
    db.dispose()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def now() -> FakeNow:
    return FakeNow(T0 + 10 * SECOND)


def _list(database: Database, clock: FakeClock, now: FakeNow, **kwargs) -> RevocationList:
    kwargs.setdefault("refresh_interval", 10.0)
    return RevocationList(database, clock=clock, now=now, **kwargs)


def test_the_list_finds_a_domain_event_by_the_users_domain(database, clock, now) -> None:
    revocations = _list(database, clock, now)

    revocations.revoke(domain_id="home")

    assert revocations.is_revoked(_values(domain_id="d1", user_domain_id="home"))
    assert not revocations.is_revoked(_values(domain_id="d1", user_domain_id="other"))


def test_revoke_applies_at_once_in_this_process(database, clock, now) -> None:
    revocations = _list(database, clock, now)
    assert not revocations.is_revoked(_values())

    event = revocations.revoke(audit_id="a1")

    assert revocations.is_revoked(_values())
    assert not revocations.is_revoked(_values(audit_id="a2", audit_chain_id="a2"))
    assert event.issued_before == now.when
    assert event.revoked_at == now.when


def test_tokens_issued_after_the_revocation_stay_valid(database, clock, now) -> None:
    revocations = _list(database, clock, now)

    revocations.revoke(user_id="u1")

    assert revocations.is_revoked(_values(issued_at=now.when))
    assert not revocations.is_revoked(_values(issued_at=now.when + SECOND))


def test_events_are_stored_in_the_table(database, clock, now) -> None:
    expires = T0 + datetime.timedelta(hours=1, microseconds=7)

    _list(database, clock, now).revoke(
        user_id="u1", project_id="p1", role_id="r1", expires_at=expires
    )

    with database.reader() as session:
        rows = session.execute(sa.select(models.RevocationEvent.__table__)).all()
    assert [(r.user_id, r.project_id, r.role_id, r.audit_id) for r in rows] == [
        ("u1", "p1", "r1", None)
    ]
    assert rows[0].expires_at == expires.replace(tzinfo=None)


def test_a_new_list_reads_the_events_with_their_exact_times(database, clock, now) -> None:
    expires = T0 + datetime.timedelta(hours=1, microseconds=7)
    stored = _list(database, clock, now).revoke(
        audit_chain_id="c1",
        expires_at=expires,
        issued_before=T0 + datetime.timedelta(microseconds=3),
    )

    events = _list(database, clock, now).events()

    assert events == [stored]
    assert events[0].issued_before.tzinfo == UTC


def test_two_lists_see_each_others_events_within_the_interval(
    conf: cfg.ConfigOpts, database, clock, now
) -> None:
    other_database = Database(conf)  # the same file through its own engine and pool
    first = _list(database, clock, now)
    second = _list(other_database, clock, now)
    assert not first.is_revoked(_values())
    assert not second.is_revoked(_values())

    first.revoke(user_id="u1")
    second.revoke(project_id="p7")

    assert first.is_revoked(_values())
    assert not second.is_revoked(_values()), "not re-read within the interval"
    assert not first.is_revoked(_values(user_id="u9", project_id="p7"))

    clock.advance(9.9)
    assert not second.is_revoked(_values())

    clock.advance(0.1)
    assert second.is_revoked(_values())
    assert first.is_revoked(_values(user_id="u9", project_id="p7"))
    other_database.dispose()


def test_lists_sharing_change_stamps_see_each_others_events_at_once(
    conf: cfg.ConfigOpts, database, clock, now
) -> None:
    # Two workers of one nimbus up: their own engines, the master's stamps.
    changes = Changes()
    other_database = Database(conf)
    first = _list(database, clock, now, changes=changes)
    second = _list(other_database, clock, now, changes=changes)
    assert not second.is_revoked(_values())

    first.revoke(user_id="u1")

    assert second.is_revoked(_values()), "re-read at once, within the interval"
    second.revoke(project_id="p7")
    assert first.is_revoked(_values(user_id="u9", project_id="p7"))
    other_database.dispose()


def test_a_list_re_reads_the_table_only_when_a_stamp_moved(database, clock, now) -> None:
    changes = Changes()
    reader = _list(database, clock, now, changes=changes)
    assert not reader.is_revoked(_values())
    queries: list[str] = []
    sa.event.listen(database.engine, "before_cursor_execute", lambda *a: queries.append(a[2]))

    for _ in range(5):
        assert not reader.is_revoked(_values())
    assert queries == []

    changes.record(Change.TOKENS)  # another kind of change
    assert not reader.is_revoked(_values())
    assert queries == []

    changes.record(Change.REVOCATIONS)
    assert not reader.is_revoked(_values())
    assert [q for q in queries if q.startswith("SELECT")] != [], "re-read at once"


def test_interval_zero_re_reads_on_every_call(database, clock, now) -> None:
    writer = _list(database, clock, now)
    reader = _list(database, clock, now, refresh_interval=0)
    assert not reader.is_revoked(_values())

    writer.revoke(audit_chain_id="c1")

    assert reader.is_revoked(_values())


def test_refresh_reads_the_table_now(database, clock, now) -> None:
    writer = _list(database, clock, now)
    reader = _list(database, clock, now)
    assert not reader.is_revoked(_values())
    writer.revoke(domain_id="d1")

    reader.refresh()

    assert reader.is_revoked(_values())


def test_prune_deletes_events_no_token_can_need(database, clock, now) -> None:
    revocations = _list(database, clock, now, token_lifetime=3600, allow_expired_window=100)
    current = now.when
    revocations.revoke(user_id="old", issued_before=current - 3701 * SECOND)
    revocations.revoke(user_id="recent", issued_before=current - 3699 * SECOND)

    assert revocations.prune(current) == 1

    assert [e.user_id for e in revocations.events()] == ["recent"]
    assert [e.user_id for e in _list(database, clock, now).events()] == ["recent"]
    assert revocations.prune(current) == 0


def test_other_lists_drop_pruned_events_after_the_interval(database, clock, now) -> None:
    pruner = _list(database, clock, now, token_lifetime=60)
    other = _list(database, clock, now)
    pruner.revoke(user_id="u1", issued_before=now.when - 120 * SECOND)
    pruner.revoke(user_id="u2")
    assert len(other.events()) == 2

    pruner.prune(now.when)
    clock.advance(10)

    assert [e.user_id for e in other.events()] == ["u2"]


def test_new_events_with_reused_ids_are_seen(database, clock, now) -> None:
    # SQLite hands out the ids of deleted rows again: after a prune that
    # empties the table, new events can have the ids of old ones.
    writer = _list(database, clock, now, token_lifetime=60)
    reader = _list(database, clock, now)
    for user_id in ("old1", "old2"):
        writer.revoke(user_id=user_id, issued_before=now.when - 120 * SECOND)
    assert not reader.is_revoked(_values())

    writer.prune(now.when)
    now.when += SECOND
    writer.revoke(user_id="new1")
    writer.revoke(user_id="u1")
    clock.advance(10)

    assert reader.is_revoked(_values())
    assert sorted(e.user_id for e in reader.events()) == ["new1", "u1"]


def test_from_conf_uses_the_token_options(conf: cfg.ConfigOpts, database) -> None:
    revocations = RevocationList.from_conf(conf, database)

    assert revocations.retention == datetime.timedelta(
        seconds=conf.token.expiration + conf.token.allow_expired_window
    )
    assert revocations._refresh_interval == conf.token.revocation_refresh_interval


@pytest.mark.parametrize(
    "attrs, field",
    [
        ({}, "revocation event"),
        ({"expires_at": T0}, "revocation event"),
        ({"user_id": "u" * 65}, "user_id"),
        ({"audit_id": "a" * 33}, "audit_id"),
        ({"user_id": ""}, "user_id"),
        ({"user_id": "u1", "issued_before": datetime.datetime(2026, 1, 1)}, "issued_before"),
        ({"user_id": "u1", "expires_at": datetime.datetime(2026, 1, 1)}, "expires_at"),
    ],
)
def test_invalid_events_are_refused(database, clock, now, attrs: dict, field: str) -> None:
    revocations = _list(database, clock, now)

    with pytest.raises(exception.ValidationError) as info:
        revocations.revoke(**attrs)

    assert info.value.kwargs["field"] == field
    assert revocations.events() == []


def test_index_agrees_with_a_linear_scan(database, clock, now) -> None:
    rng = random.Random(20261121)
    users = [f"u{i}" for i in range(20)]
    projects = [f"p{i}" for i in range(10)]
    roles = [f"r{i}" for i in range(5)]
    audits = [f"a{i}" for i in range(30)]

    def maybe(pool: list[str], chance: float) -> str | None:
        return rng.choice(pool) if rng.random() < chance else None

    rows = []
    for i in range(400):
        attrs = {
            "user_id": maybe(users, 0.4),
            "project_id": maybe(projects, 0.3),
            "domain_id": maybe(["d1", "d2"], 0.1),
            "role_id": maybe(roles, 0.2),
            "audit_id": maybe(audits, 0.2),
            "audit_chain_id": maybe(audits, 0.1),
        }
        if not any(attrs.values()):
            attrs["user_id"] = rng.choice(users)
        rows.append(
            {
                **attrs,
                "issued_before": (T0 + (i % 7 - 3) * SECOND).replace(tzinfo=None),
                "revoked_at": T0.replace(tzinfo=None),
            }
        )
    # One event without an indexed attribute, as another writer could store.
    rows.append(
        {
            "expires_at": (T0 + 3600 * SECOND).replace(tzinfo=None),
            "issued_before": T0.replace(tzinfo=None),
            "revoked_at": T0.replace(tzinfo=None),
        }
    )
    database.write(lambda session: session.execute(sa.insert(models.RevocationEvent), rows))
    revocations = _list(database, clock, now)
    events = revocations.events()
    assert len(events) == 401

    hits = 0
    for _ in range(1000):
        audit = rng.choice(audits)
        values = _values(
            user_id=rng.choice(users),
            project_id=rng.choice([*projects, None]),
            domain_id=rng.choice(["d1", "d2", None]),
            role_ids=frozenset(rng.sample(roles, rng.randint(0, 3))),
            audit_id=audit,
            audit_chain_id=rng.choice([audit, rng.choice(audits)]),
            issued_at=T0 + rng.randint(-5, 5) * SECOND,
            expires_at=T0 + rng.choice([3600, 3601]) * SECOND,
        )
        expected = any(matches(event, values) for event in events)
        assert revocations.is_revoked(values) is expected, values
        hits += expected
    assert 100 < hits < 900, "the sample exercises both outcomes"


def test_user_event_matches_only_that_user(database, clock, now) -> None:
    user_id = uuid.uuid4().hex
    revocations = _list(database, clock, now)

    revocations.revoke(user_id=user_id)

    assert revocations.is_revoked(_values(user_id=user_id))
    assert not revocations.is_revoked(_values(user_id=uuid.uuid4().hex))
