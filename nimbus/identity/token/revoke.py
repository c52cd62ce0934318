"""Revocation events: how stateless tokens are taken back before they expire.

A revocation event names some token attributes (a user, a project, an audit
id, ...) and a time, ``issued_before``.  A token is revoked when it was issued
at or before that time and carries every attribute the event sets.  Events
are created when a token is deleted (by its audit id), when a user's password
changes (by user id), when a project is disabled (by project id), when a role
assignment is removed (user, project and role), and so on.  They are kept
only as long as a token they match could still be accepted.

Every API process keeps the events in memory, indexed so that checking a
token looks at a handful of candidate events, not at all of them, and
re-reads the table at most every ``refresh_interval`` seconds to see the
events that other processes wrote.  A re-read is one aggregate query while
nothing changed, and fetches only the new rows otherwise.  The workers of one
server that share :class:`~nimbus.common.changes.Changes` (``nimbus up``'s)
also re-read it as soon as one of them records an event.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, cast, overload

import sqlalchemy as sa
from oslo_config import cfg
from sqlalchemy import orm

from nimbus import exception
from nimbus.common.changes import Change, Changes
from nimbus.db.api import Database
from nimbus.identity import models
from nimbus.identity.token.formatter import TokenPayload

__all__ = ["RevocationEvent", "RevocationList", "TokenValues", "matches"]

LOG = logging.getLogger(__name__)

#: Event attributes that are compared with the token's for equality.
_EQUAL_ATTRS = ("user_id", "project_id", "domain_id", "audit_id", "audit_chain_id", "expires_at")
#: Attributes that can identify what an event revokes (``expires_at`` only narrows).
_TARGET_ATTRS = ("user_id", "project_id", "domain_id", "role_id", "audit_id", "audit_chain_id")
# Index buckets, most selective first: an event goes in the first whose
# attribute it sets.
_BUCKETS = ("audit_id", "audit_chain_id", "user_id", "project_id", "domain_id", "role_id")
_ID_LENGTH = 64
_AUDIT_ID_LENGTH = 32


# (count, highest id, sum of ids, latest revoked_at).  SQLite may reuse the
# ids of deleted rows, and the latest revoked_at tells those apart.
_Fingerprint = tuple[int, int, int, datetime.datetime | None]


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


@dataclasses.dataclass(frozen=True, kw_only=True)
class RevocationEvent:
    """Revokes the tokens issued at or before ``issued_before`` that match every set attribute.

    ``role_id`` matches a token holding that role; ``expires_at`` matches a
    token expiring at exactly that time.  Times are timezone-aware UTC.
    """

    user_id: str | None = None
    project_id: str | None = None
    domain_id: str | None = None
    role_id: str | None = None
    audit_id: str | None = None
    audit_chain_id: str | None = None
    expires_at: datetime.datetime | None = None
    issued_before: datetime.datetime
    revoked_at: datetime.datetime


@dataclasses.dataclass(frozen=True, kw_only=True)
class TokenValues:
    """The attributes of a validated token that revocation events are matched against.

    ``domain_id`` is the domain of a domain-scoped token, or the domain of
    the project of a project-scoped one; ``user_domain_id`` is the user's
    own domain; ``role_ids`` are the roles the token carries at validation.
    """

    user_id: str
    issued_at: datetime.datetime
    expires_at: datetime.datetime
    audit_id: str
    audit_chain_id: str
    project_id: str | None = None
    domain_id: str | None = None
    user_domain_id: str | None = None
    role_ids: frozenset[str] = frozenset()

    @classmethod
    def from_payload(
        cls,
        payload: TokenPayload,
        *,
        role_ids: Iterable[str] = (),
        domain_id: str | None = None,
    ) -> TokenValues:
        """Build the values of a decoded token.

        :param payload: the decoded token.
        :param role_ids: the roles the token carries now.
        :param domain_id: the project's domain, for a project-scoped token;
            a domain-scoped token's own domain is used when not given.
        :returns: the values to check with :meth:`RevocationList.is_revoked`.
        """
        copied = ("user_id", "issued_at", "expires_at", "audit_id", "audit_chain_id", "project_id")
        return cls(
            **{attr: getattr(payload, attr) for attr in copied},
            domain_id=domain_id if domain_id is not None else payload.domain_id,
            role_ids=frozenset(role_ids),
        )

    @classmethod
    def coerce(cls, values: TokenValues | Mapping[str, Any]) -> TokenValues:
        """Return *values* as TokenValues, converting a mapping of the same keys.

        :param values: TokenValues, or a mapping with the keys ``user_id``,
            ``project_id``, ``domain_id``, ``user_domain_id``, ``role_ids``, ``audit_id``,
            ``audit_chain_id``, ``issued_at`` and ``expires_at``.
        :returns: the values as TokenValues.
        :raises nimbus.exception.ValidationError: a key is missing.
        """
        if isinstance(values, TokenValues):
            return values
        try:
            return cls(
                user_id=values["user_id"],
                issued_at=values["issued_at"],
                expires_at=values["expires_at"],
                audit_id=values["audit_id"],
                audit_chain_id=values["audit_chain_id"],
                project_id=values.get("project_id"),
                domain_id=values.get("domain_id"),
                user_domain_id=values.get("user_domain_id"),
                role_ids=frozenset(values.get("role_ids") or ()),
            )
        except KeyError as ex:
            raise exception.ValidationError(field=str(ex.args[0]), reason="missing") from ex


def matches(event: RevocationEvent, token_values: TokenValues | Mapping[str, Any]) -> bool:
    """Tell whether *event* revokes the token described by *token_values*.

    :param event: the revocation event.
    :param token_values: the token's attributes (see :meth:`TokenValues.coerce`).
    :returns: True when every attribute the event sets equals the token's
        (``role_id`` being one of the token's roles, ``domain_id`` the
        token's scope domain or its user's domain) and the token was issued
        at or before ``issued_before``.
    """
    return _matches(event, TokenValues.coerce(token_values))


def _matches(event: RevocationEvent, token_values: TokenValues) -> bool:
    if token_values.issued_at > event.issued_before:
        return False
    for attr in _EQUAL_ATTRS:
        wanted = getattr(event, attr)
        if wanted is not None and wanted != getattr(token_values, attr):
            if attr != "domain_id" or wanted != token_values.user_domain_id:
                return False
    return event.role_id is None or event.role_id in token_values.role_ids


class _Index:
    """Events by database id, bucketed by their most selective attribute.

    Appending to a bucket is safe while readers iterate it; removals build a
    new index that replaces the old one.
    """

    def __init__(self, rows: Iterable[tuple[int, RevocationEvent]] = ()) -> None:
        self.events: dict[int, RevocationEvent] = {}
        self.buckets: dict[str, dict[str, list[RevocationEvent]]] = {a: {} for a in _BUCKETS}
        self.unbucketed: list[RevocationEvent] = []
        self.max_id = 0
        self.id_sum = 0
        self.last_revoked_at: datetime.datetime | None = None
        for row_id, event in rows:
            self.add(row_id, event)

    def add(self, row_id: int, event: RevocationEvent) -> None:
        if row_id in self.events:
            return
        for attr in _BUCKETS:
            key = getattr(event, attr)
            if key is not None:
                self.buckets[attr].setdefault(key, []).append(event)
                break
        else:
            self.unbucketed.append(event)
        self.events[row_id] = event
        self.max_id = max(self.max_id, row_id)
        self.id_sum += row_id
        if self.last_revoked_at is None or event.revoked_at > self.last_revoked_at:
            self.last_revoked_at = event.revoked_at

    @property
    def fingerprint(self) -> _Fingerprint:
        """Return what the table's aggregate query gives when it holds the same rows."""
        return len(self.events), self.max_id, self.id_sum, self.last_revoked_at

    def candidates(self, values: TokenValues) -> Iterator[RevocationEvent]:
        buckets = self.buckets
        for attr in _BUCKETS[:-1]:
            key = getattr(values, attr)
            if key is not None:
                yield from buckets[attr].get(key, ())
        # A domain's event also revokes the tokens of the domain's users.
        if values.user_domain_id is not None and values.user_domain_id != values.domain_id:
            yield from buckets["domain_id"].get(values.user_domain_id, ())
        by_role = buckets["role_id"]
        if by_role:
            for role_id in values.role_ids:
                yield from by_role.get(role_id, ())
        yield from self.unbucketed


class RevocationList:
    """The revocation events of the cloud, as one API process sees them.

    :param database: where events are stored (table ``revocation_events``).
    :param refresh_interval: seconds between two re-reads of the table; 0
        re-reads it on every call.
    :param token_lifetime: the longest lifetime of a token, in seconds
        (``[token] expiration``).
    :param allow_expired_window: seconds after expiry in which a token can
        still be validated (``[token] allow_expired_window``).
    :param clock: monotonic seconds, for the refresh interval.
    :param now: the current timezone-aware time, for new events.
    :param changes: stamps shared with the other workers of this server: an
        event one of them records is read at the next check, without
        waiting for the interval.
    """

    def __init__(
        self,
        database: Database,
        *,
        refresh_interval: float,
        token_lifetime: float = 3600.0,
        allow_expired_window: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime.datetime] = _utcnow,
        changes: Changes | None = None,
    ) -> None:
        self._database = database
        self._refresh_interval = refresh_interval
        self.retention = datetime.timedelta(seconds=token_lifetime + allow_expired_window)
        self._clock = clock
        self._now = now
        self._index = _Index()
        # Highest id read from the table: new rows from other processes are above it.
        self._synced_max_id = 0
        self._refreshed_at: float | None = None
        self._changes = changes
        # The stamp of Change.REVOCATIONS the last re-read started after.
        self._seen_stamp: int | None = None
        self._lock = threading.Lock()
        # Declarative models type __table__ as any FromClause; this one is a Table.
        self._table = cast(sa.Table, models.RevocationEvent.__table__)

    @classmethod
    def from_conf(
        cls, conf: cfg.ConfigOpts, database: Database, *, changes: Changes | None = None
    ) -> RevocationList:
        """Build the list with the ``[token]`` options.

        :param conf: the nimbus config.
        :param database: the process's database handle.
        :param changes: stamps shared with the server's other workers, if any.
        :returns: a list that reads the table on first use.
        """
        return cls(
            database,
            refresh_interval=conf.token.revocation_refresh_interval,
            token_lifetime=conf.token.expiration,
            allow_expired_window=conf.token.allow_expired_window,
            changes=changes,
        )

    def revoke(self, **match: Any) -> RevocationEvent:
        """Record an event; this process and those sharing its stamps apply it at once.

        Other processes apply it within the refresh interval.

        :param match: the event's attributes, as :class:`RevocationEvent`
            names them (all but ``revoked_at``): ``user_id`` revokes the tokens
            of a user; ``project_id`` those scoped to a project; ``domain_id``
            those scoped to a domain or its projects and those of its users;
            ``role_id`` those carrying a role; ``audit_id`` one token;
            ``audit_chain_id`` a whole chain; ``expires_at`` only the tokens
            expiring at exactly that time; ``issued_before`` only those issued
            at or before it (default: now).
        :returns: the stored event.
        :raises nimbus.exception.ValidationError: no attribute is set, an id is
            too long, or a time is not timezone-aware.
        :raises TypeError: *match* names something an event does not have.
        """
        now = self._now()
        issued_before = _aware("issued_before", match.pop("issued_before", None) or now)
        if match.get("expires_at") is not None:
            match["expires_at"] = _aware("expires_at", match["expires_at"])
        event = RevocationEvent(
            **match, issued_before=issued_before, revoked_at=now.astimezone(datetime.UTC)
        )
        _validate(event)
        row = _to_row(event)

        def insert(session: orm.Session) -> int:
            result = cast(
                sa.CursorResult[Any], session.execute(sa.insert(self._table).values(**row))
            )
            # None only on dialects that cannot report a new key; ours all can.
            assert result.inserted_primary_key is not None
            return int(result.inserted_primary_key[0])

        row_id = self._database.write(insert)
        with self._lock:
            self._index.add(row_id, event)
        if self._changes is not None:
            # After the commit: a worker that sees the stamp finds the row.
            self._changes.record(Change.REVOCATIONS)
        LOG.info("Revocation event %d recorded (%s)", row_id, _describe(event))
        return event

    def is_revoked(self, token_values: TokenValues | Mapping[str, Any]) -> bool:
        """Tell whether an event revokes the token.

        :param token_values: the token's attributes (see :meth:`TokenValues.coerce`).
        :returns: True when at least one event matches.
        """
        values = TokenValues.coerce(token_values)
        self._maybe_refresh()
        return any(_matches(e, values) for e in self._index.candidates(values))

    def events(self) -> list[RevocationEvent]:
        """Return the events known to this process, oldest first."""
        self._maybe_refresh()
        index = self._index
        return [index.events[row_id] for row_id in sorted(index.events)]

    def prune(self, now: datetime.datetime | None = None) -> int:
        """Delete the events that can no longer match a token anyone accepts.

        An event matches only tokens issued before its ``issued_before``;
        those expire within ``token_lifetime`` and are refused after a further
        ``allow_expired_window``.

        :param now: the current time (default: the injected ``now``).
        :returns: how many events were deleted.
        """
        cutoff = (now or self._now()) - self.retention
        naive_cutoff = _naive(cutoff)

        def delete(session: orm.Session) -> int:
            statement = sa.delete(self._table).where(self._table.c.issued_before < naive_cutoff)
            result = cast(sa.CursorResult[Any], session.execute(statement))
            return result.rowcount

        deleted = self._database.write(delete)
        with self._lock:
            kept = [(i, e) for i, e in self._index.events.items() if e.issued_before >= cutoff]
            self._index = _Index(kept)
        if deleted:
            LOG.info("Pruned %d revocation events issued before %s", deleted, cutoff)
        return deleted

    def refresh(self) -> None:
        """Bring the in-memory events up to date with the table now."""
        with self._lock:
            stamp = self._stamp()
            self._refresh_locked()
            self._refreshed_at = self._clock()
            self._seen_stamp = stamp

    # -- reading the table ---------------------------------------------------

    def _stamp(self) -> int | None:
        return None if self._changes is None else self._changes.stamp(Change.REVOCATIONS)

    def _fresh(self, now: float) -> bool:
        """Whether the last re-read is recent and no shared worker recorded an event since."""
        refreshed_at = self._refreshed_at
        return (
            refreshed_at is not None
            and now - refreshed_at < self._refresh_interval
            and self._stamp() == self._seen_stamp
        )

    def _maybe_refresh(self) -> None:
        if self._fresh(self._clock()):
            return
        with self._lock:
            now = self._clock()
            if self._fresh(now):
                return
            # Read before the table: an event recorded after it moves the stamp again.
            stamp = self._stamp()
            self._refresh_locked()
            self._refreshed_at = now
            self._seen_stamp = stamp

    def _refresh_locked(self) -> None:
        table = self._table
        with self._database.reader() as session:
            count, max_id, id_sum, last_revoked_at = session.execute(
                sa.select(
                    sa.func.count(),
                    sa.func.coalesce(sa.func.max(table.c.id), 0),
                    sa.func.coalesce(sa.func.sum(table.c.id), 0),
                    sa.func.max(table.c.revoked_at),
                ).select_from(table)
            ).one()
            in_table = (int(count), int(max_id), int(id_sum), _aware_from_db(last_revoked_at))
            if in_table == self._index.fingerprint:
                self._synced_max_id = in_table[1]
                return
            # Usually other processes only added rows: fetch those.
            new_rows = session.execute(
                sa.select(table).where(table.c.id > self._synced_max_id)
            ).all()
            for row in new_rows:
                self._index.add(row.id, _from_row(row))
            if self._index.fingerprint == in_table:
                self._synced_max_id = in_table[1]
                return
            # Rows were deleted (pruned) or committed out of id order: read all.
            rows = session.execute(sa.select(table)).all()
        self._index = _Index((row.id, _from_row(row)) for row in rows)
        self._synced_max_id = max((row.id for row in rows), default=0)
        LOG.debug("Re-read %d revocation events", len(rows))


def _aware(field: str, value: datetime.datetime) -> datetime.datetime:
    if value.utcoffset() is None:
        raise exception.ValidationError(field=field, reason="a timezone-aware time needed")
    return value.astimezone(datetime.UTC)


def _validate(event: RevocationEvent) -> None:
    if all(getattr(event, attr) is None for attr in _TARGET_ATTRS):
        raise exception.ValidationError(
            field="revocation event",
            reason="set at least one of " + ", ".join(_TARGET_ATTRS),
        )
    for attr in _TARGET_ATTRS:
        value = getattr(event, attr)
        limit = _AUDIT_ID_LENGTH if attr.startswith("audit") else _ID_LENGTH
        if value is not None and (not isinstance(value, str) or not 0 < len(value) <= limit):
            raise exception.ValidationError(
                field=attr, reason=f"a string of 1 to {limit} characters needed"
            )


def _naive(value: datetime.datetime) -> datetime.datetime:
    # The table holds naive UTC times, like every nimbus table.
    return value.astimezone(datetime.UTC).replace(tzinfo=None)


@overload
def _aware_from_db(value: datetime.datetime) -> datetime.datetime: ...
@overload
def _aware_from_db(value: None) -> None: ...
def _aware_from_db(value: datetime.datetime | None) -> datetime.datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=datetime.UTC)
    return value.astimezone(datetime.UTC)


def _to_row(event: RevocationEvent) -> dict[str, object]:
    row: dict[str, object] = {attr: getattr(event, attr) for attr in _TARGET_ATTRS}
    row["expires_at"] = _naive(event.expires_at) if event.expires_at is not None else None
    row["issued_before"] = _naive(event.issued_before)
    row["revoked_at"] = _naive(event.revoked_at)
    return row


def _from_row(row: sa.Row) -> RevocationEvent:
    return RevocationEvent(
        **{attr: getattr(row, attr) for attr in _TARGET_ATTRS},
        expires_at=_aware_from_db(row.expires_at),
        issued_before=_aware_from_db(row.issued_before),
        revoked_at=_aware_from_db(row.revoked_at),
    )


def _describe(event: RevocationEvent) -> str:
    # Ids only: audit ids identify a token without being usable as one.
    return ", ".join(
        f"{attr}={getattr(event, attr)}" for attr in _TARGET_ATTRS if getattr(event, attr)
    )
