"""The ``static`` identity back-end: users read from a JSON file."""

from __future__ import annotations

import json
from typing import Any, ClassVar

from nimbus import exception
from nimbus.common import passwords
from nimbus.drivers.identity import Capability, IdentityDriver, ListQuery, User
from oslo_config import cfg

from nimbus_identity_static import opts

__all__ = ["StaticIdentityDriver"]

_FIELDS = frozenset(
    {
        "id",
        "name",
        "domain_id",
        "password_hash",
        "enabled",
        "default_project_id",
        "description",
        "email",
        "extra",
    }
)


class StaticIdentityDriver(IdentityDriver):
    """Read-only users from a JSON file (``[identity_static] users_file``).

    The file is read once, when the back-end is built.  It offers no
    optional capability: no writes, no groups and no lock-out.
    """

    capabilities: ClassVar[frozenset[Capability]] = frozenset()

    def __init__(self, conf: cfg.ConfigOpts, *, database: Any = None) -> None:
        super().__init__(conf, database=database)
        opts.register_opts(conf)
        path = conf.identity_static.users_file
        self._users: dict[str, User] = {}
        self._hashes: dict[str, str | None] = {}
        for entry in self._read(path):
            user, password_hash = self._parse(path, entry)
            if user.id in self._users:
                self._fail(path, f"user id {user.id!r} appears twice")
            if any(
                (other.name, other.domain_id) == (user.name, user.domain_id)
                for other in self._users.values()
            ):
                self._fail(path, f"two users are named {user.name!r} in {user.domain_id!r}")
            self._users[user.id] = user
            self._hashes[user.id] = password_hash

    def _fail(self, path: str, reason: str) -> None:
        raise exception.DriverError(driver=self.name, reason=f"{path}: {reason}")

    def _read(self, path: str) -> list[Any]:
        try:
            with open(path, encoding="utf-8") as stream:
                document = json.load(stream)
        except OSError as ex:
            self._fail(path, f"cannot read it ({ex.strerror})")
        except ValueError as ex:
            self._fail(path, f"not valid JSON ({ex})")
        if not isinstance(document, dict) or not isinstance(document.get("users"), list):
            self._fail(path, 'expected an object with a "users" list')
        return document["users"]

    def _parse(self, path: str, entry: Any) -> tuple[User, str | None]:
        if not isinstance(entry, dict):
            self._fail(path, "every user must be an object")
        unknown = sorted(set(entry) - _FIELDS)
        if unknown:
            self._fail(path, f"unknown user fields: {', '.join(unknown)}")
        for key in ("id", "name", "domain_id"):
            if not isinstance(entry.get(key), str) or not entry[key]:
                self._fail(path, f"every user needs a non-empty string {key!r}")
        if not isinstance(entry.get("enabled", True), bool):
            self._fail(path, f"user {entry['id']!r}: 'enabled' must be true or false")
        if len(entry["id"]) > 64:
            self._fail(path, f"user id {entry['id']!r} is longer than 64 characters")
        fields = {key: value for key, value in entry.items() if key != "password_hash"}
        fields["extra"] = dict(fields.get("extra") or {})
        return User(**fields), entry.get("password_hash")

    def get_user(self, user_id: str) -> User:
        try:
            return self._users[user_id]
        except (KeyError, TypeError):
            raise exception.NotFound(kind="user", id=user_id) from None

    def get_user_by_name(self, name: str, domain_id: str) -> User:
        for user in self._users.values():
            if (user.name, user.domain_id) == (name, domain_id):
                return user
        raise exception.NotFound(kind="user", id=name)

    def list_users(self, query: ListQuery) -> list[User]:
        found = sorted(
            (
                user
                for user in self._users.values()
                if (query.domain_id is None or user.domain_id == query.domain_id)
                and (query.name is None or user.name == query.name)
                and (query.enabled is None or user.enabled == query.enabled)
                and (query.ids is None or user.id in query.ids)
                and (query.marker is None or user.id > query.marker)
            ),
            key=lambda user: user.id,
        )
        return found if query.limit is None else found[: query.limit]

    def authenticate(self, user_id: str, password: str) -> User:
        user = self._users.get(user_id) if isinstance(user_id, str) else None
        hashed = self._hashes.get(user.id) if user is not None else None
        # A dummy check for unknown users keeps their answer as slow as others'.
        rounds = self.conf.identity.password_hash_rounds
        if passwords.verify_password(password, hashed, rounds=rounds) and user is not None:
            return user
        raise exception.AuthenticationFailed()
