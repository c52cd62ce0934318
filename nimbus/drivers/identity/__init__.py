"""Identity back-ends: where users and groups are stored."""

from nimbus.drivers.identity.base import IdentityDriver
from nimbus.drivers.identity.types import Capability, Group, ListQuery, User

__all__ = ["Capability", "Group", "IdentityDriver", "ListQuery", "User"]
