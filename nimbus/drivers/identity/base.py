"""The identity back-end interface: where users and groups are stored.

Vocabulary of this layer:

* A **user** is an account that authenticates with a password; it belongs
  to exactly one domain, and its name is unique within that domain.
* A **group** is a named set of users in one domain; role assignments made
  to a group apply to its members.
* Ids are opaque strings of at most 64 characters chosen by the back-end.
  Domains, projects and roles are *not* the back-end's business: the identity
  service keeps them in nimbus's database and refers to back-end users and
  groups by id only.

A back-end must offer the read operations and ``authenticate``; writes and
groups are optional and announced through :attr:`IdentityDriver.capabilities`.
Passwords are handed to the back-end in clear text and never come back out.
"""

from __future__ import annotations

import abc
import datetime
import types
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from oslo_config import cfg

from nimbus import exception
from nimbus.common import passwords
from nimbus.drivers._capabilities import CapabilityGuarded
from nimbus.drivers.identity.types import Capability, Group, ListQuery, User

__all__ = ["OPTIONAL_OPERATIONS", "IdentityDriver"]


#: Each optional operation and the capability it needs.  A back-end without
#: that capability raises ``OperationNotSupported`` from it, even when it
#: inherits an implementation (see :meth:`IdentityDriver.__init_subclass__`).
def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


OPTIONAL_OPERATIONS: Mapping[str, Capability] = types.MappingProxyType(
    {
        "create_user": Capability.WRITE_USERS,
        "update_user": Capability.WRITE_USERS,
        "delete_user": Capability.WRITE_USERS,
        "get_group": Capability.GROUPS,
        "list_groups": Capability.GROUPS,
        "list_groups_for_user": Capability.GROUPS,
        "list_users_in_group": Capability.GROUPS,
        "create_group": Capability.WRITE_GROUPS,
        "update_group": Capability.WRITE_GROUPS,
        "delete_group": Capability.WRITE_GROUPS,
        "add_user_to_group": Capability.WRITE_GROUPS,
        "remove_user_from_group": Capability.WRITE_GROUPS,
    }
)


class IdentityDriver(CapabilityGuarded, abc.ABC):
    """Base class of identity back-ends (``nimbus.identity.backends``).

    :param conf: the nimbus config; back-ends read ``[identity]`` and their
        own option group from it.
    :param database: injected by the identity service for back-ends that
        keep their data in nimbus's SQL database; an object with
        ``engine``, ``reader()``, ``writer()`` and ``write(fn)``.
        Other back-ends ignore it.
    :param now: returns the current time (aware, UTC); back-ends that
        count failed logins read it, and tests of the lock-out timing
        inject their own clock.
    :raises DriverError: the back-end sets :attr:`needs_database` and no
        *database* was given.
    """

    #: Optional operations this back-end implements.
    capabilities: ClassVar[frozenset[Capability]] = frozenset()
    optional_operations = OPTIONAL_OPERATIONS

    #: The back-end keeps its data in nimbus's SQL database and cannot
    #: start without it.
    needs_database: ClassVar[bool] = False

    def __init__(
        self,
        conf: cfg.ConfigOpts,
        *,
        database: Any = None,
        now: Callable[[], datetime.datetime] = _utcnow,
    ) -> None:
        if database is None and self.needs_database:
            raise exception.DriverError(
                driver=self.name, reason="it needs nimbus's database, and none was given"
            )
        self.conf = conf
        self.database = database
        self._now = now

    def _unsupported(self, operation: str) -> exception.OperationNotSupported:
        return exception.OperationNotSupported(driver=self.name, operation=operation)

    def _hash(self, password: str | None) -> str | None:
        """Return the hash to store for a new *password* (``None`` stays ``None``).

        For back-ends that keep password hashes themselves; the hash
        follows ``[identity] password_hash_rounds`` and
        ``max_password_length``.
        """
        if password is None:
            return None
        return passwords.hash_new_password(
            password,
            rounds=self.conf.identity.password_hash_rounds,
            max_length=self.conf.identity.max_password_length,
        )

    # -- required: reading users and authenticating -------------------------

    @abc.abstractmethod
    def get_user(self, user_id: str) -> User:
        """Return one user.

        :raises NotFound: no user has that id.
        """

    @abc.abstractmethod
    def get_user_by_name(self, name: str, domain_id: str) -> User:
        """Return the user called *name* in *domain_id*.

        :raises NotFound: no such user.
        """

    @abc.abstractmethod
    def list_users(self, query: ListQuery) -> list[User]:
        """Return the users matching *query*, sorted by id, at most ``query.limit``."""

    @abc.abstractmethod
    def authenticate(self, user_id: str, password: str) -> User:
        """Check *password* for *user_id* and return the user.

        A disabled user is returned as it is: the caller decides.

        :raises AuthenticationFailed: the user does not exist or the
            password is wrong (the message must not say which); with
            :attr:`Capability.LOCKOUT`, failures 1 to N of a run.
        :raises UserLockedOut: after N failures in a row, until
            ``[identity] lockout_duration`` has passed, even with the right
            password (back-ends with :attr:`Capability.LOCKOUT`).
        """

    # -- optional: writing users (Capability.WRITE_USERS) -------------------

    def create_user(
        self, *, name: str, domain_id: str, password: str | None = None, **attrs: Any
    ) -> User:
        """Store a new user.

        :param attrs: ``enabled``, ``default_project_id``, ``description``,
            ``email``, ``extra``.
        :raises Conflict: the name is taken in that domain.
        """
        raise self._unsupported("create_user")

    def update_user(self, user_id: str, **changes: Any) -> User:
        """Change a user's attributes; a ``password`` key sets a new password.

        Setting a password also clears any lock-out.

        :raises NotFound: no user has that id.
        :raises Conflict: a rename collides with another user.
        """
        raise self._unsupported("update_user")

    def delete_user(self, user_id: str) -> None:
        """Delete a user and its group memberships.

        :raises NotFound: no user has that id.
        """
        raise self._unsupported("delete_user")

    # -- optional: groups (Capability.GROUPS / WRITE_GROUPS) ----------------

    def get_group(self, group_id: str) -> Group:
        """Return one group. :raises NotFound: no group has that id."""
        raise self._unsupported("get_group")

    def list_groups(self, query: ListQuery) -> list[Group]:
        """Return the groups matching *query*, sorted by id."""
        raise self._unsupported("list_groups")

    def list_groups_for_user(self, user_id: str) -> list[Group]:
        """Return the groups *user_id* belongs to, sorted by id.

        :raises NotFound: no user has that id.
        """
        raise self._unsupported("list_groups_for_user")

    def list_users_in_group(self, group_id: str, query: ListQuery) -> list[User]:
        """Return the members of *group_id* matching *query*.

        :raises NotFound: no group has that id.
        """
        raise self._unsupported("list_users_in_group")

    def create_group(self, *, name: str, domain_id: str, **attrs: Any) -> Group:
        """Store a new group. :raises Conflict: the name is taken in that domain."""
        raise self._unsupported("create_group")

    def update_group(self, group_id: str, **changes: Any) -> Group:
        """Change a group's ``name``, ``description`` or ``extra``.

        :raises NotFound: no group has that id.
        :raises Conflict: a rename collides with another group.
        """
        raise self._unsupported("update_group")

    def delete_group(self, group_id: str) -> None:
        """Delete a group and its memberships. :raises NotFound: unknown group."""
        raise self._unsupported("delete_group")

    def add_user_to_group(self, user_id: str, group_id: str) -> None:
        """Make *user_id* a member of *group_id* (idempotent).

        :raises NotFound: the user or the group does not exist.
        """
        raise self._unsupported("add_user_to_group")

    def remove_user_from_group(self, user_id: str, group_id: str) -> None:
        """End a membership. :raises NotFound: it did not exist."""
        raise self._unsupported("remove_user_from_group")
