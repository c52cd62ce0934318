"""Rules that the per-service policies are built from.

"Cloud admin" means the admin role on a system-scoped token, or on a
project-scoped token whose project counts as an admin project.  As in
Keystone, every project does by default (the admin role anywhere is the
cloud's); with ``[identity] admin_project_only`` only the project named by
``[identity] admin_project_name`` does, and the admin role on any other
project grants nothing more than member there.  Reading everything needs the
reader role on the system (Keystone's ``SYSTEM_READER``), never a project role.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from oslo_policy import policy

ADMIN_REQUIRED = "rule:admin_required"
CLOUD_READER = "rule:cloud_reader"
SERVICE_ROLE = "rule:service_role"

RULES = [
    policy.RuleDefault(
        "admin_required",
        "role:admin and (system_scope:all or is_admin_project:True)",
        description="The caller is a cloud administrator.",
    ),
    policy.RuleDefault(
        "cloud_reader",
        "rule:admin_required or (role:reader and system_scope:all)",
        description="The caller may read every resource in the cloud.",
    ),
    policy.RuleDefault(
        "service_role",
        "role:service",
        description="The caller is another nimbus or OpenStack service.",
    ),
]


def documented_rule(
    prefix: str, name: str, check: str, description: str, method: str, path: str
) -> policy.RuleDefault:
    """Return the rule *prefix*:*name* guarding one API operation."""
    return policy.DocumentedRuleDefault(
        name=f"{prefix}:{name}",
        check_str=check,
        description=description,
        operations=[{"method": method, "path": path}],
    )


def rule_factory(prefix: str) -> Callable[[str, str, str, str, str], policy.RuleDefault]:
    """Return :func:`documented_rule` bound to one service's *prefix*."""
    return functools.partial(documented_rule, prefix)


def list_rules() -> list[policy.RuleDefault]:
    """Return the base rules."""
    return list(RULES)
