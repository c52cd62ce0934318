"""The ``fake`` identity back-end: users and groups in memory."""

from __future__ import annotations

import dataclasses
import datetime
import threading
import uuid
from collections.abc import Iterable
from typing import Any, ClassVar

from oslo_config import cfg

from nimbus import exception
from nimbus.common import passwords
from nimbus.drivers.identity.base import IdentityDriver
from nimbus.drivers.identity.types import Capability, Group, ListQuery, User

__all__ = ["FakeIdentityDriver"]

_USER_ATTRS = frozenset({"enabled", "default_project_id", "description", "email", "extra"})
_GROUP_ATTRS = frozenset({"description", "extra"})


def _copy(entry: Any) -> Any:
    # Callers get their own ``extra`` dict, so changing it changes nothing here.
    return dataclasses.replace(entry, extra=dict(entry.extra))


@dataclasses.dataclass
class _UserRecord:
    user: User
    password_hash: str | None = None
    failed_auth_count: int = 0
    failed_auth_at: datetime.datetime | None = None


class FakeIdentityDriver(IdentityDriver):
    """Users and groups in memory, lost at exit: for tests and demos.

    Behaves like the ``sql`` back-end (bcrypt hashes, lock-out, exact
    filters, pages by id); one lock makes it safe to share between threads.

    Takes the keyword arguments of :class:`IdentityDriver` (``now`` for
    tests of the lock-out timing).
    """

    capabilities: ClassVar[frozenset[Capability]] = frozenset(Capability)

    def __init__(self, conf: cfg.ConfigOpts, **kwargs: Any) -> None:
        super().__init__(conf, **kwargs)
        self._lock = threading.RLock()
        self._users: dict[str, _UserRecord] = {}
        self._groups: dict[str, Group] = {}
        self._members: set[tuple[str, str]] = set()

    # -- helpers ------------------------------------------------------------

    @staticmethod
    def _check_attrs(changes: dict[str, Any], allowed: frozenset[str], kind: str) -> None:
        for key, value in changes.items():
            if key in ("id", "domain_id"):
                raise exception.ValidationError(field=key, reason=f"a {kind}'s {key} is fixed")
            if key == "name":
                if not isinstance(value, str) or not value.strip():
                    raise exception.ValidationError(
                        field="name", reason="must be a non-empty string"
                    )
            elif key not in allowed:
                raise exception.ValidationError(field=key, reason=f"not a {kind} attribute")

    @staticmethod
    def _normalized(changes: dict[str, Any]) -> dict[str, Any]:
        if "extra" in changes:
            changes["extra"] = dict(changes["extra"] or {})
        if "enabled" in changes:
            changes["enabled"] = bool(changes["enabled"])
        return changes

    def _user_record(self, user_id: str) -> _UserRecord:
        record = self._users.get(user_id) if isinstance(user_id, str) else None
        if record is None:
            raise exception.NotFound(kind="user", id=user_id)
        return record

    def _group_of(self, group_id: str) -> Group:
        group = self._groups.get(group_id) if isinstance(group_id, str) else None
        if group is None:
            raise exception.NotFound(kind="group", id=group_id)
        return group

    def _name_taken(self, kind: str, name: str, domain_id: str, but: str | None = None) -> bool:
        if kind == "user":
            entries: Iterable[User | Group] = (record.user for record in self._users.values())
        else:
            entries = self._groups.values()
        return any(
            entry.name == name and entry.domain_id == domain_id and entry.id != but
            for entry in entries
        )

    @staticmethod
    def _select(entries: Iterable[Any], query: ListQuery, *, users: bool) -> list[Any]:
        selected = [
            entry
            for entry in entries
            if (query.domain_id is None or entry.domain_id == query.domain_id)
            and (query.name is None or entry.name == query.name)
            and (not users or query.enabled is None or entry.enabled == query.enabled)
            and (query.ids is None or entry.id in query.ids)
            and (query.marker is None or entry.id > query.marker)
        ]
        selected.sort(key=lambda entry: entry.id)
        if query.limit is not None:
            selected = selected[: query.limit]
        return [_copy(entry) for entry in selected]

    # -- reading users and authenticating -----------------------------------

    def get_user(self, user_id: str) -> User:
        with self._lock:
            return _copy(self._user_record(user_id).user)

    def get_user_by_name(self, name: str, domain_id: str) -> User:
        with self._lock:
            for record in self._users.values():
                if record.user.name == name and record.user.domain_id == domain_id:
                    return _copy(record.user)
        raise exception.NotFound(kind="user", id=name)

    def list_users(self, query: ListQuery) -> list[User]:
        with self._lock:
            return self._select((r.user for r in self._users.values()), query, users=True)

    def authenticate(self, user_id: str, password: str) -> User:
        """Check *password* for *user_id*; lock-out works as in the ``sql`` back-end."""
        identity = self.conf.identity
        limit = identity.lockout_failure_attempts
        with self._lock:
            record = self._users.get(user_id) if isinstance(user_id, str) else None
            hashed = record.password_hash if record is not None else None
            counting = (
                record is not None
                and limit > 0
                and record.user.id not in identity.lockout_ignored_user_ids
            )
            if record is not None and counting:
                self._claim_attempt(record, limit)
        # bcrypt runs outside the lock, and for unknown users too.
        candidate = password if isinstance(password, str) else ""
        too_long = len(candidate) > identity.max_password_length
        matched = passwords.verify_password(candidate, hashed, rounds=identity.password_hash_rounds)
        if record is None:
            raise exception.AuthenticationFailed()
        with self._lock:
            if matched and not too_long:
                record.failed_auth_count = 0
                record.failed_auth_at = None
                return _copy(record.user)
        raise exception.AuthenticationFailed()

    def _claim_attempt(self, record: _UserRecord, limit: int) -> None:
        """Count one more failure in advance (under the lock), as the ``sql`` back-end.

        :raises UserLockedOut: *limit* failures in a row, the last one less
            than ``lockout_duration`` ago.
        """
        now = self._now()
        duration = datetime.timedelta(seconds=self.conf.identity.lockout_duration)
        if record.failed_auth_count >= limit:
            if record.failed_auth_at is not None and record.failed_auth_at + duration > now:
                raise exception.UserLockedOut(user_id=record.user.id)
            record.failed_auth_count = 0
        record.failed_auth_count += 1
        record.failed_auth_at = now

    # -- writing users --------------------------------------------------------

    def create_user(
        self, *, name: str, domain_id: str, password: str | None = None, **attrs: Any
    ) -> User:
        self._check_attrs({"name": name, **attrs}, _USER_ATTRS, "user")
        attrs = self._normalized(dict(attrs))
        password_hash = self._hash(password)
        user = _copy(User(id=uuid.uuid4().hex, name=name, domain_id=domain_id, **attrs))
        with self._lock:
            if self._name_taken("user", name, domain_id):
                raise exception.Conflict(
                    kind="user",
                    reason=f"a user named {name!r} already exists in domain {domain_id!r}",
                )
            self._users[user.id] = _UserRecord(user=user, password_hash=password_hash)
        return _copy(user)

    def update_user(self, user_id: str, **changes: Any) -> User:
        password_given = "password" in changes
        password = changes.pop("password", None)
        self._check_attrs(changes, _USER_ATTRS, "user")
        changes = self._normalized(changes)
        password_hash = self._hash(password)
        with self._lock:
            record = self._user_record(user_id)
            name = changes.get("name", record.user.name)
            if self._name_taken("user", name, record.user.domain_id, but=user_id):
                raise exception.Conflict(
                    kind="user", reason=f"a user named {name!r} already exists in that domain"
                )
            record.user = dataclasses.replace(record.user, **changes)
            if password_given:
                record.password_hash = password_hash
                record.failed_auth_count = 0
                record.failed_auth_at = None
            return _copy(record.user)

    def delete_user(self, user_id: str) -> None:
        with self._lock:
            self._user_record(user_id)
            del self._users[user_id]
            self._members = {pair for pair in self._members if pair[0] != user_id}

    # -- groups ---------------------------------------------------------------

    def get_group(self, group_id: str) -> Group:
        with self._lock:
            return _copy(self._group_of(group_id))

    def list_groups(self, query: ListQuery) -> list[Group]:
        """Return the groups matching *query*, sorted by id; ``enabled`` is ignored."""
        with self._lock:
            return self._select(self._groups.values(), query, users=False)

    def list_groups_for_user(self, user_id: str) -> list[Group]:
        """Return the groups *user_id* belongs to. :raises NotFound: unknown user."""
        with self._lock:
            self._user_record(user_id)
            groups = [self._groups[g] for (u, g) in self._members if u == user_id]
        return [_copy(group) for group in sorted(groups, key=lambda group: group.id)]

    def list_users_in_group(self, group_id: str, query: ListQuery) -> list[User]:
        with self._lock:
            self._group_of(group_id)
            members = (self._users[u].user for (u, g) in self._members if g == group_id)
            return self._select(members, query, users=True)

    def create_group(self, *, name: str, domain_id: str, **attrs: Any) -> Group:
        self._check_attrs({"name": name, **attrs}, _GROUP_ATTRS, "group")
        group = Group(
            id=uuid.uuid4().hex, name=name, domain_id=domain_id, **self._normalized(attrs)
        )
        with self._lock:
            if self._name_taken("group", name, domain_id):
                raise exception.Conflict(
                    kind="group",
                    reason=f"a group named {name!r} already exists in domain {domain_id!r}",
                )
            self._groups[group.id] = group
        return _copy(group)

    def update_group(self, group_id: str, **changes: Any) -> Group:
        """Change a group. :raises NotFound: unknown group. :raises Conflict: name taken."""
        self._check_attrs(changes, _GROUP_ATTRS, "group")
        changes = self._normalized(changes)
        with self._lock:
            group = self._group_of(group_id)
            name = changes.get("name", group.name)
            if self._name_taken("group", name, group.domain_id, but=group_id):
                raise exception.Conflict(
                    kind="group", reason=f"a group named {name!r} already exists in that domain"
                )
            self._groups[group_id] = dataclasses.replace(group, **changes)
            return _copy(self._groups[group_id])

    def delete_group(self, group_id: str) -> None:
        with self._lock:
            self._group_of(group_id)
            del self._groups[group_id]
            self._members = {pair for pair in self._members if pair[1] != group_id}

    def add_user_to_group(self, user_id: str, group_id: str) -> None:
        with self._lock:
            self._user_record(user_id)
            self._group_of(group_id)
            self._members.add((user_id, group_id))

    def remove_user_from_group(self, user_id: str, group_id: str) -> None:
        with self._lock:
            if (user_id, group_id) not in self._members:
                raise exception.NotFound(kind="membership", id=f"{user_id} in {group_id}")
            self._members.discard((user_id, group_id))
