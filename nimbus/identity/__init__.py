"""The identity service: users, projects, roles, tokens and revocations."""

from nimbus.drivers.identity import ListQuery

__all__ = ["ListQuery"]
