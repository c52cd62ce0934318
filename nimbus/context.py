"""The request context: who is asking, for which project, under which request id.

A context travels from the API middleware through service calls, over the
message bus (``to_dict``/``from_dict``) and into log records.  The raw token
is carried so that a service can act on the caller's behalf, but it is never
part of ``__repr__`` or of what is logged.
"""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

__all__ = ["RequestContext", "generate_request_id"]


def generate_request_id() -> str:
    """Return a new request id in OpenStack's ``req-<uuid>`` form."""
    return f"req-{uuid.uuid4()}"


#: What oslo.policy rules are checked against, in this order.
_POLICY_FIELDS = (
    "user_id",
    "user_domain_id",
    "project_id",
    "project_domain_id",
    "domain_id",
    "system_scope",
    "roles",
    "is_admin",
    "is_admin_project",
)
#: What is safe to put in a log line (never the token).
_LOG_FIELDS = ("request_id", "user_id", "project_id", "audit_id")


@dataclasses.dataclass
class RequestContext:
    """Security and tracing facts about one request."""

    user_id: str | None = None
    user_name: str | None = None
    user_domain_id: str | None = None
    project_id: str | None = None
    project_name: str | None = None
    project_domain_id: str | None = None
    domain_id: str | None = None
    system_scope: str | None = None
    #: The token is scoped to the cloud's admin project (see policies.base).
    is_admin_project: bool = False
    roles: list[str] = dataclasses.field(default_factory=list)
    request_id: str = dataclasses.field(default_factory=generate_request_id)
    global_request_id: str | None = None
    audit_id: str | None = None
    auth_token: str | None = dataclasses.field(default=None, repr=False)
    authenticated: bool = False

    @property
    def is_admin(self) -> bool:
        """Whether the caller is a cloud administrator (see :mod:`nimbus.policies.base`)."""
        return "admin" in self.roles and (self.system_scope == "all" or self.is_admin_project)

    def to_dict(self) -> dict[str, Any]:
        """Serialise for the message bus."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> RequestContext:
        """Rebuild a context sent over the bus; unknown keys are ignored."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})

    def to_policy_values(self) -> dict[str, Any]:
        """Return the credentials dict that oslo.policy rules are checked against."""
        values = self._values(_POLICY_FIELDS)
        values["roles"] = list(self.roles)
        return values

    def to_log_values(self) -> dict[str, Any]:
        """Return the fields safe to put in a log line (no token)."""
        return self._values(_LOG_FIELDS)

    def _values(self, names: tuple[str, ...]) -> dict[str, Any]:
        return {name: getattr(self, name) for name in names}

    @classmethod
    def admin(cls, **kwargs: Any) -> RequestContext:
        """Return a context for internal work done with admin rights."""
        kwargs.setdefault("roles", ["admin", "member", "reader"])
        kwargs.setdefault("system_scope", "all")
        kwargs.setdefault("authenticated", True)
        return cls(**kwargs)
