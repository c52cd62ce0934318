"""Users and groups: the identity back-end plus what the service adds around it.

The back-end stores them; this layer checks references to domains and
projects, removes role assignments of deleted actors, and revokes tokens
when a password changes or a user is disabled, deleted or leaves a group.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nimbus import exception
from nimbus.drivers.identity import Capability, Group, IdentityDriver, ListQuery, User

__all__ = ["UserManager", "group_dict", "user_dict"]


def user_dict(user: User) -> dict[str, Any]:
    """Render a user as the identity API shows it (without links)."""
    body = {
        **user.extra,
        "id": user.id,
        "name": user.name,
        "domain_id": user.domain_id,
        "enabled": user.enabled,
        "password_expires_at": user.password_expires_at,
        "options": {},
    }
    if user.default_project_id is not None:
        body["default_project_id"] = user.default_project_id
    if user.description is not None:
        body["description"] = user.description
    if user.email is not None:
        body["email"] = user.email
    return body


def group_dict(group: Group) -> dict[str, Any]:
    """Render a group as the identity API shows it (without links)."""
    return {
        **group.extra,
        "id": group.id,
        "name": group.name,
        "domain_id": group.domain_id,
        "description": group.description or "",
    }


_USER_COLUMNS = ("name", "enabled", "default_project_id", "description", "email")


class UserManager:
    """The identity service's view of users and groups.

    :param driver: the identity back-end.
    :param revoke: records a revocation event.
    :param check_domain: raises ValidationError for an unknown domain id.
    :param check_project: raises ValidationError for an unknown project id.
    :param delete_actor: removes the role assignments of a deleted user or group.
    """

    def __init__(
        self,
        driver: IdentityDriver,
        revoke: Callable[..., None],
        check_domain: Callable[[str], None],
        check_project: Callable[[str], None],
        delete_actor: Callable[[str], None],
    ) -> None:
        self.driver = driver
        self.revoke = revoke
        self.check_domain = check_domain
        self.check_project = check_project
        self.delete_actor = delete_actor

    def _require(self, capability: Capability, operation: str) -> None:
        if capability not in self.driver.capabilities:
            raise exception.OperationNotSupported(driver=self.driver.name, operation=operation)

    @property
    def supports_groups(self) -> bool:
        """Whether the back-end stores groups."""
        return Capability.GROUPS in self.driver.capabilities

    # -- users ---------------------------------------------------------------

    def get_user(self, user_id: str) -> User:
        """Return a user. :raises NotFound: unknown id."""
        return self.driver.get_user(user_id)

    def get_user_by_name(self, name: str, domain_id: str) -> User:
        """Return the user called *name* in *domain_id*."""
        return self.driver.get_user_by_name(name, domain_id)

    def list_users(self, query: ListQuery) -> list[User]:
        """Return the users matching *query*."""
        return self.driver.list_users(query)

    def _split(self, attrs: dict[str, Any]) -> dict[str, Any]:
        known = {k: v for k, v in attrs.items() if k in _USER_COLUMNS or k == "password"}
        extra = {k: v for k, v in attrs.items() if k not in known}
        if extra:
            known["extra"] = extra
        return known

    def create_user(self, *, name: str, domain_id: str, **attrs: Any) -> User:
        """Create a user after checking its domain and default project exist."""
        self._require(Capability.WRITE_USERS, "create_user")
        self.check_domain(domain_id)
        if attrs.get("default_project_id"):
            self.check_project(attrs["default_project_id"])
        return self.driver.create_user(name=name, domain_id=domain_id, **self._split(attrs))

    def update_user(self, user_id: str, changes: dict[str, Any]) -> User:
        """Update a user; a new password or disabling revokes its tokens."""
        self._require(Capability.WRITE_USERS, "update_user")
        if changes.get("default_project_id"):
            self.check_project(changes["default_project_id"])
        before = self.driver.get_user(user_id)
        values = self._split(changes)
        if "extra" in values:
            values["extra"] = {**before.extra, **values["extra"]}
        user = self.driver.update_user(user_id, **values)
        if "password" in changes or (before.enabled and not user.enabled):
            self.revoke(user_id=user_id)
        return user

    def change_password(self, user_id: str, original_password: str, password: str) -> None:
        """Self-service password change: check the old password, then set the new one.

        :raises AuthenticationFailed: the original password is wrong.
        """
        self._require(Capability.WRITE_USERS, "change_password")
        self.driver.authenticate(user_id, original_password)
        self.driver.update_user(user_id, password=password)
        self.revoke(user_id=user_id)

    def delete_user(self, user_id: str) -> None:
        """Delete a user, its role assignments, and its tokens' validity."""
        self._require(Capability.WRITE_USERS, "delete_user")
        self.driver.delete_user(user_id)
        self.delete_actor(user_id)
        self.revoke(user_id=user_id)

    def authenticate(self, user_id: str, password: str) -> User:
        """Check a password and return the user."""
        return self.driver.authenticate(user_id, password)

    # -- groups ----------------------------------------------------------------

    def group_ids_for_user(self, user_id: str) -> list[str]:
        """Return the ids of the groups *user_id* is in ([] without group support)."""
        if not self.supports_groups:
            return []
        return [g.id for g in self.driver.list_groups_for_user(user_id)]

    def user_ids_in_group(self, group_id: str) -> list[str]:
        """Return the ids of *group_id*'s members."""
        if not self.supports_groups:
            return []
        return [u.id for u in self.driver.list_users_in_group(group_id, ListQuery())]

    def get_group(self, group_id: str) -> Group:
        """Return a group."""
        self._require(Capability.GROUPS, "get_group")
        return self.driver.get_group(group_id)

    def list_groups(self, query: ListQuery) -> list[Group]:
        """Return the groups matching *query*."""
        self._require(Capability.GROUPS, "list_groups")
        return self.driver.list_groups(query)

    def list_groups_for_user(self, user_id: str) -> list[Group]:
        """Return the groups of a user (checking that the user exists)."""
        self.driver.get_user(user_id)
        if not self.supports_groups:
            return []
        return self.driver.list_groups_for_user(user_id)

    def list_users_in_group(self, group_id: str, query: ListQuery) -> list[User]:
        """Return a group's members."""
        self._require(Capability.GROUPS, "list_users_in_group")
        return self.driver.list_users_in_group(group_id, query)

    def create_group(self, *, name: str, domain_id: str, **attrs: Any) -> Group:
        """Create a group after checking its domain exists."""
        self._require(Capability.WRITE_GROUPS, "create_group")
        self.check_domain(domain_id)
        description = attrs.pop("description", None)
        return self.driver.create_group(
            name=name, domain_id=domain_id, description=description, extra=attrs
        )

    def update_group(self, group_id: str, changes: dict[str, Any]) -> Group:
        """Rename a group or change its description."""
        self._require(Capability.WRITE_GROUPS, "update_group")
        before = self.driver.get_group(group_id)
        values = {k: v for k, v in changes.items() if k in ("name", "description")}
        extra = {k: v for k, v in changes.items() if k not in values}
        if extra:
            values["extra"] = {**before.extra, **extra}
        return self.driver.update_group(group_id, **values)

    def delete_group(self, group_id: str) -> None:
        """Delete a group; its members lose the roles it carried."""
        self._require(Capability.WRITE_GROUPS, "delete_group")
        members = self.user_ids_in_group(group_id)
        self.driver.delete_group(group_id)
        self.delete_actor(group_id)
        for user_id in members:
            self.revoke(user_id=user_id)

    def add_user_to_group(self, user_id: str, group_id: str) -> None:
        """Add a member."""
        self._require(Capability.WRITE_GROUPS, "add_user_to_group")
        self.driver.add_user_to_group(user_id, group_id)

    def check_user_in_group(self, user_id: str, group_id: str) -> bool:
        """Tell whether *user_id* is a member of *group_id*."""
        self._require(Capability.GROUPS, "check_user_in_group")
        self.driver.get_group(group_id)
        self.driver.get_user(user_id)
        return group_id in self.group_ids_for_user(user_id)

    def remove_user_from_group(self, user_id: str, group_id: str) -> None:
        """Remove a member; its tokens are revoked, since the group's roles may be gone."""
        self._require(Capability.WRITE_GROUPS, "remove_user_from_group")
        self.driver.remove_user_from_group(user_id, group_id)
        self.revoke(user_id=user_id)
