"""Users and groups: the identity back-end plus what the service adds around it.

The back-end stores them; this layer checks references to domains and
projects, removes role assignments of deleted actors, and revokes tokens
when a password changes or a user is disabled, deleted or leaves a group.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from oslo_config import cfg

from nimbus import exception
from nimbus.context import RequestContext
from nimbus.drivers.identity import Capability, Group, IdentityDriver, ListQuery, User
from nimbus.identity.common import INTERNAL, Manager, Revoke, caller_domain
from nimbus.policy import Enforcer

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


@dataclasses.dataclass(eq=False)
class UserManager(Manager):
    """The identity service's view of users and groups.

    :param conf: the nimbus config (``[identity] default_domain_id``).
    :param driver: the identity back-end.
    :param enforcer: checks the ``identity:*`` rules.
    :param revoke: records a revocation event.
    :param check_domain: raises NotFound for an unknown domain id.
    :param check_project: raises ValidationError for an unknown project id.
    :param delete_actor: removes the role assignments of a deleted user or group.
    :param forget_tokens: drops the cached token validations, called after
        changes to group memberships (the roles of members change).
    """

    conf: cfg.ConfigOpts
    driver: IdentityDriver
    enforcer: Enforcer
    revoke: Revoke
    _: dataclasses.KW_ONLY
    check_domain: Callable[[str], None]
    check_project: Callable[[str], None]
    delete_actor: Callable[[str], None]
    forget_tokens: Callable[[], None]

    def _require(self, capability: Capability, operation: str) -> None:
        if capability not in self.driver.capabilities:
            raise exception.OperationNotSupported(driver=self.driver.name, operation=operation)

    @property
    def supports_groups(self) -> bool:
        """Whether the back-end stores groups."""
        return Capability.GROUPS in self.driver.capabilities

    def _new_member_domain(
        self, ctx: RequestContext, operation: str, capability: Capability, domain_id: str | None
    ) -> str:
        """Check policy and the back-end for a create; return the domain it goes in."""
        self.authorize(ctx, f"identity:{operation}")
        self._require(capability, operation)
        domain_id = caller_domain(ctx, self.conf, domain_id)
        self.check_domain(domain_id)
        return domain_id

    # -- users ---------------------------------------------------------------

    def get_user(self, ctx: RequestContext, user_id: str) -> User:
        """Return a user. :raises NotFound: unknown id."""
        self.authorize(ctx, "identity:get_user", {"target.user.id": user_id})
        return self.driver.get_user(user_id)

    def get_user_by_name(self, name: str, domain_id: str) -> User:
        """Return the user called *name* in *domain_id* (for authentication)."""
        return self.driver.get_user_by_name(name, domain_id)

    def list_users(self, ctx: RequestContext, query: ListQuery) -> list[User]:
        """Return the users matching *query*."""
        self.authorize(ctx, "identity:list_users")
        return self.driver.list_users(query)

    def delete_domain_actors(self, domain_id: str) -> None:
        """Delete the groups and the users of a domain being deleted (no policy check)."""
        # A back-end may cap a listing: list again until none is left.
        while self.supports_groups and (
            groups := self.driver.list_groups(ListQuery(domain_id=domain_id))
        ):
            for group in groups:
                self.delete_group(INTERNAL, group.id)
        while users := self.driver.list_users(ListQuery(domain_id=domain_id)):
            for user in users:
                self.delete_user(INTERNAL, user.id)

    def _split(self, attrs: Mapping[str, Any]) -> dict[str, Any]:
        known = {k: v for k, v in attrs.items() if k in _USER_COLUMNS or k == "password"}
        extra = {k: v for k, v in attrs.items() if k not in known}
        if extra:
            known["extra"] = extra
        return known

    def create_user(
        self, ctx: RequestContext, *, name: str, domain_id: str | None = None, **attrs: Any
    ) -> User:
        """Create a user after checking its domain and default project exist.

        :param domain_id: as for :meth:`create_group`.
        """
        domain_id = self._new_member_domain(ctx, "create_user", Capability.WRITE_USERS, domain_id)
        if attrs.get("default_project_id") is None:
            attrs.pop("default_project_id", None)  # null: not given
        if attrs.get("default_project_id"):
            self.check_project(attrs["default_project_id"])
        return self.driver.create_user(name=name, domain_id=domain_id, **self._split(attrs))

    def update_user(self, ctx: RequestContext, user_id: str, changes: Mapping[str, Any]) -> User:
        """Update a user; a new password or disabling revokes its tokens.

        :raises ValidationError: *changes* has a ``domain_id`` other than the user's.
        """
        self.authorize(ctx, "identity:update_user", {"target.user.id": user_id})
        self._require(Capability.WRITE_USERS, "update_user")
        if changes.get("default_project_id"):
            self.check_project(changes["default_project_id"])
        before = self.driver.get_user(user_id)
        if "domain_id" in changes:
            changes = dict(changes)
            if changes.pop("domain_id") != before.domain_id:
                raise exception.ValidationError(field="user/domain_id", reason="cannot be changed")
        values = self._split(changes)
        if "extra" in values:
            values["extra"] = {**before.extra, **values["extra"]}
        user = self.driver.update_user(user_id, **values)
        if "password" in changes or (before.enabled and not user.enabled):
            self.revoke(user_id=user_id)
        return user

    def change_password(
        self, ctx: RequestContext, user_id: str, passwords: Mapping[str, str]
    ) -> None:
        """Check a user's current password, then set the new one.

        As in Keystone, knowing the current password is what allows it: the
        caller may be the user, an administrator or anyone else.

        :param passwords: ``original_password`` and the new ``password``.
        :raises AuthenticationFailed: the original password is wrong.
        """
        self.authorize(ctx, "identity:change_password", {"target.user.id": user_id})
        self._require(Capability.WRITE_USERS, "change_password")
        self.driver.authenticate(user_id, passwords["original_password"])
        self.driver.update_user(user_id, password=passwords["password"])
        self.revoke(user_id=user_id)

    def delete_user(self, ctx: RequestContext, user_id: str) -> None:
        """Delete a user, its role assignments, and its tokens' validity."""
        self.authorize(ctx, "identity:delete_user", {"target.user.id": user_id})
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

    def get_group(self, ctx: RequestContext, group_id: str) -> Group:
        """Return a group."""
        self.authorize(ctx, "identity:get_group", {"target.group.id": group_id})
        self._require(Capability.GROUPS, "get_group")
        return self.driver.get_group(group_id)

    def list_groups(self, ctx: RequestContext, query: ListQuery) -> list[Group]:
        """Return the groups matching *query*."""
        self.authorize(ctx, "identity:list_groups")
        self._require(Capability.GROUPS, "list_groups")
        return self.driver.list_groups(query)

    def list_groups_for_user(self, ctx: RequestContext, user_id: str) -> list[Group]:
        """Return the groups of a user (checking that the user exists)."""
        self.authorize(ctx, "identity:list_groups_for_user", {"target.user.id": user_id})
        self.driver.get_user(user_id)
        if not self.supports_groups:
            return []
        return self.driver.list_groups_for_user(user_id)

    def list_users_in_group(
        self, ctx: RequestContext, group_id: str, query: ListQuery
    ) -> list[User]:
        """Return a group's members."""
        self.authorize(ctx, "identity:list_users_in_group", {"target.group.id": group_id})
        self._require(Capability.GROUPS, "list_users_in_group")
        return self.driver.list_users_in_group(group_id, query)

    def create_group(
        self, ctx: RequestContext, *, name: str, domain_id: str | None = None, **attrs: Any
    ) -> Group:
        """Create a group after checking its domain exists.

        :param domain_id: by default the caller's project's domain, else
            ``[identity] default_domain_id``.
        """
        domain_id = self._new_member_domain(ctx, "create_group", Capability.WRITE_GROUPS, domain_id)
        description = attrs.pop("description", None)
        return self.driver.create_group(
            name=name, domain_id=domain_id, description=description, extra=attrs
        )

    def update_group(self, ctx: RequestContext, group_id: str, changes: Mapping[str, Any]) -> Group:
        """Rename a group or change its description.

        :raises ValidationError: *changes* has a ``domain_id`` other than the group's.
        """
        self.authorize(ctx, "identity:update_group", {"target.group.id": group_id})
        changes = dict(changes)
        if "domain_id" in changes:
            domain_id = changes.pop("domain_id")
            if domain_id != self.get_group(INTERNAL, group_id).domain_id:
                raise exception.ValidationError(field="group/domain_id", reason="cannot be changed")
        self._require(Capability.WRITE_GROUPS, "update_group")
        before = self.driver.get_group(group_id)
        values = {k: v for k, v in changes.items() if k in ("name", "description")}
        extra = {k: v for k, v in changes.items() if k not in values}
        if extra:
            values["extra"] = {**before.extra, **extra}
        return self.driver.update_group(group_id, **values)

    def delete_group(self, ctx: RequestContext, group_id: str) -> None:
        """Delete a group; its members lose the roles it carried."""
        self.authorize(ctx, "identity:delete_group", {"target.group.id": group_id})
        self._require(Capability.WRITE_GROUPS, "delete_group")
        members = self.user_ids_in_group(group_id)
        self.driver.delete_group(group_id)
        self.delete_actor(group_id)
        for user_id in members:
            self.revoke(user_id=user_id)
        self.forget_tokens()

    @staticmethod
    def _membership(group_id: str, user_id: str) -> dict[str, str]:
        return {"target.group.id": group_id, "target.user.id": user_id}

    def add_user_to_group(self, ctx: RequestContext, user_id: str, group_id: str) -> None:
        """Add a member; it gains the group's roles at once."""
        self.authorize(ctx, "identity:add_user_to_group", self._membership(group_id, user_id))
        self._require(Capability.WRITE_GROUPS, "add_user_to_group")
        self.driver.add_user_to_group(user_id, group_id)
        self.forget_tokens()

    def check_user_in_group(self, ctx: RequestContext, user_id: str, group_id: str) -> None:
        """Return if *user_id* is a member of *group_id*.

        :raises NotFound: it is not, or the user or the group does not exist.
        """
        self.authorize(ctx, "identity:check_user_in_group", self._membership(group_id, user_id))
        self._require(Capability.GROUPS, "check_user_in_group")
        self.driver.get_group(group_id)
        self.driver.get_user(user_id)
        if group_id not in self.group_ids_for_user(user_id):
            raise exception.NotFound(kind="membership", id=f"user {user_id} in group {group_id}")

    def remove_user_from_group(self, ctx: RequestContext, user_id: str, group_id: str) -> None:
        """Remove a member; its tokens are revoked, since the group's roles may be gone."""
        self.authorize(ctx, "identity:remove_user_from_group", self._membership(group_id, user_id))
        self._require(Capability.WRITE_GROUPS, "remove_user_from_group")
        self.driver.remove_user_from_group(user_id, group_id)
        self.revoke(user_id=user_id)
        self.forget_tokens()
