"""Policy defaults of the compute API (Nova's rule names, ``os_compute_api:`` prefix).

Key pairs belong to users: the target carries ``user_id``.  Quotas are a
project's: the target carries ``project_id``.  Flavors are read by anyone
with a token and changed by cloud admins only.
"""

from __future__ import annotations

from oslo_policy import policy

from nimbus.policies.base import ADMIN_REQUIRED, rule_factory

ANYONE = "@"
ADMIN_OR_OWNER = f"{ADMIN_REQUIRED} or user_id:%(user_id)s"
PROJECT_READER = f"{ADMIN_REQUIRED} or (role:reader and project_id:%(project_id)s)"

_rule = rule_factory("os_compute_api")
_FLAVOR = "/flavors/{flavor_id}"
_SPECS = _FLAVOR + "/os-extra_specs"
_KEYPAIR = "/os-keypairs/{keypair_name}"
_QUOTA = "/os-quota-sets/{tenant_id}"

RULES: list[policy.RuleDefault] = [
    _rule("os-flavor-manage:create", ADMIN_REQUIRED, "Create a flavor.", "POST", "/flavors"),
    _rule("os-flavor-manage:delete", ADMIN_REQUIRED, "Delete a flavor.", "DELETE", _FLAVOR),
    _rule("os-flavor-extra-specs:index", ANYONE, "List a flavor's extra specs.", "GET", _SPECS),
    _rule("os-flavor-extra-specs:show", ANYONE, "Show an extra spec.", "GET", _SPECS + "/{key}"),
    _rule("os-flavor-extra-specs:create", ADMIN_REQUIRED, "Add extra specs.", "POST", _SPECS),
    _rule(
        "os-flavor-extra-specs:update",
        ADMIN_REQUIRED,
        "Set one extra spec.",
        "PUT",
        _SPECS + "/{key}",
    ),
    _rule(
        "os-flavor-extra-specs:delete",
        ADMIN_REQUIRED,
        "Delete an extra spec.",
        "DELETE",
        _SPECS + "/{key}",
    ),
    _rule(
        "os-flavor-access",
        ADMIN_REQUIRED,
        "List the projects that may use a private flavor.",
        "GET",
        _FLAVOR + "/os-flavor-access",
    ),
    _rule(
        "os-flavor-access:add_tenant_access",
        ADMIN_REQUIRED,
        "Let a project use a private flavor.",
        "POST",
        _FLAVOR + "/action (addTenantAccess)",
    ),
    _rule(
        "os-flavor-access:remove_tenant_access",
        ADMIN_REQUIRED,
        "Take a project off a private flavor's access list.",
        "POST",
        _FLAVOR + "/action (removeTenantAccess)",
    ),
    _rule("os-keypairs:index", ADMIN_OR_OWNER, "List key pairs.", "GET", "/os-keypairs"),
    _rule("os-keypairs:create", ADMIN_OR_OWNER, "Create a key pair.", "POST", "/os-keypairs"),
    _rule("os-keypairs:show", ADMIN_OR_OWNER, "Show a key pair.", "GET", _KEYPAIR),
    _rule("os-keypairs:delete", ADMIN_OR_OWNER, "Delete a key pair.", "DELETE", _KEYPAIR),
    _rule("os-quota-sets:show", PROJECT_READER, "Show a project's quotas.", "GET", _QUOTA),
    _rule(
        "os-quota-sets:detail",
        PROJECT_READER,
        "Show a project's quotas with their usage.",
        "GET",
        _QUOTA + "/detail",
    ),
    _rule(
        "os-quota-sets:defaults", ANYONE, "Show the default quotas.", "GET", _QUOTA + "/defaults"
    ),
    _rule("os-quota-sets:update", ADMIN_REQUIRED, "Set a project's quotas.", "PUT", _QUOTA),
    _rule(
        "os-quota-sets:delete",
        ADMIN_REQUIRED,
        "Put a project's quotas back to the defaults.",
        "DELETE",
        _QUOTA,
    ),
    _rule("limits", ANYONE, "Show the caller's project's limits and usage.", "GET", "/limits"),
]


def list_rules() -> list[policy.RuleDefault]:
    """Return the compute rules."""
    return list(RULES)
