"""Values that cross the identity back-end boundary."""

from __future__ import annotations

import dataclasses
import datetime
import enum
from typing import Any

__all__ = ["Capability", "Group", "ListQuery", "User"]


class Capability(enum.Enum):
    """Optional operations an identity back-end may offer."""

    #: create, update (including passwords) and delete users.
    WRITE_USERS = "write_users"
    #: read groups and memberships.
    GROUPS = "groups"
    #: create, update and delete groups and change memberships.
    WRITE_GROUPS = "write_groups"
    #: lock users out after repeated failed logins.
    LOCKOUT = "lockout"


@dataclasses.dataclass(frozen=True)
class User:
    """A user as the identity service sees it; the password never leaves the back-end."""

    id: str
    name: str
    domain_id: str
    enabled: bool = True
    default_project_id: str | None = None
    description: str | None = None
    email: str | None = None
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)
    password_expires_at: datetime.datetime | None = None


@dataclasses.dataclass(frozen=True)
class Group:
    """A named set of users in one domain."""

    id: str
    name: str
    domain_id: str
    description: str | None = None
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class ListQuery:
    """Filters and a page window for a listing.

    Every filter is an exact match; ``None`` means "any".  Results are
    sorted by id; ``marker`` is the last id of the previous page.
    """

    domain_id: str | None = None
    name: str | None = None
    enabled: bool | None = None
    ids: frozenset[str] | None = None
    limit: int | None = None
    marker: str | None = None
