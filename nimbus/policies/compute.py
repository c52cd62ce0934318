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

PROJECT_MEMBER = f"{ADMIN_REQUIRED} or (role:member and project_id:%(project_id)s)"
_SERVER = "/servers/{server_id}"
_ACTION = _SERVER + "/action"


def _server_rules() -> list[policy.RuleDefault]:
    read = [
        ("servers:index", "List servers.", "GET", "/servers"),
        ("servers:detail", "List servers in full.", "GET", "/servers/detail"),
        ("servers:show", "Show a server.", "GET", _SERVER),
        ("server-metadata:index", "List a server's metadata.", "GET", _SERVER + "/metadata"),
        ("os-instance-actions:list", "List a server's actions.", "GET",
         _SERVER + "/os-instance-actions"),
        ("os-instance-actions:show", "Show one of a server's actions.", "GET",
         _SERVER + "/os-instance-actions/{request_id}"),
        ("os-server-groups:index", "List server groups.", "GET", "/os-server-groups"),
        ("os-server-groups:show", "Show a server group.", "GET", "/os-server-groups/{id}"),
    ]  # fmt: skip
    write = [
        ("servers:create", "Create servers.", "POST", "/servers"),
        ("servers:create_image", "Snapshot a server into an image.", "POST", _ACTION),
        ("servers:rebuild", "Rebuild a server from an image.", "POST", _ACTION),
        ("os-server-groups:create", "Create a server group.", "POST", "/os-server-groups"),
        ("os-server-groups:delete", "Delete a server group.", "DELETE", "/os-server-groups/{id}"),
        ("servers:update", "Rename a server.", "PUT", _SERVER),
        ("servers:delete", "Delete a server.", "DELETE", _SERVER),
        ("servers:start", "Start a server (os-start).", "POST", _ACTION),
        ("servers:stop", "Stop a server (os-stop).", "POST", _ACTION),
        ("servers:reboot", "Reboot a server.", "POST", _ACTION),
        ("os-pause-server:pause", "Pause a server.", "POST", _ACTION),
        ("os-pause-server:unpause", "Unpause a server.", "POST", _ACTION),
        ("os-suspend-server:suspend", "Suspend a server.", "POST", _ACTION),
        ("os-suspend-server:resume", "Resume a server.", "POST", _ACTION),
        ("os-lock-server:lock", "Lock a server.", "POST", _ACTION),
        ("os-lock-server:unlock", "Unlock a server.", "POST", _ACTION),
        ("os-console-output", "Read a server's console log.", "POST", _ACTION),
        ("os-deferred-delete:force", "Delete a server at once (forceDelete).", "POST", _ACTION),
        ("server-metadata:update", "Add metadata to a server.", "POST", _SERVER + "/metadata"),
        ("server-metadata:update_all", "Replace a server's metadata.", "PUT",
         _SERVER + "/metadata"),
        ("server-metadata:delete", "Delete a server's metadata item.", "DELETE",
         _SERVER + "/metadata/{key}"),
    ]  # fmt: skip
    return [_rule(name, PROJECT_READER, *rest) for name, *rest in read] + [
        _rule(name, PROJECT_MEMBER, *rest) for name, *rest in write
    ]


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
    *_server_rules(),
    _rule("os-services:list", ADMIN_REQUIRED, "List services.", "GET", "/os-services"),
    _rule(
        "os-services:update",
        ADMIN_REQUIRED,
        "Enable or disable a service.",
        "PUT",
        "/os-services/{verb}",
    ),
    _rule("os-services:delete", ADMIN_REQUIRED, "Delete a service.", "DELETE", "/os-services/{id}"),
    _rule("os-hypervisors:list", ADMIN_REQUIRED, "List hypervisors.", "GET", "/os-hypervisors"),
    _rule(
        "os-hypervisors:list-detail",
        ADMIN_REQUIRED,
        "List hypervisors in full.",
        "GET",
        "/os-hypervisors/detail",
    ),
    _rule(
        "os-hypervisors:show", ADMIN_REQUIRED, "Show a hypervisor.", "GET", "/os-hypervisors/{id}"
    ),
    _rule(
        "os-hypervisors:statistics",
        ADMIN_REQUIRED,
        "Show the hypervisors' totals.",
        "GET",
        "/os-hypervisors/statistics",
    ),
    _rule(
        "os-availability-zone:list",
        ANYONE,
        "List availability zones.",
        "GET",
        "/os-availability-zone",
    ),  # fmt: skip
    _rule(
        "os-availability-zone:detail",
        ADMIN_REQUIRED,
        "List availability zones with their hosts.",
        "GET",
        "/os-availability-zone/detail",
    ),
]


def list_rules() -> list[policy.RuleDefault]:
    """Return the compute rules."""
    return list(RULES)
