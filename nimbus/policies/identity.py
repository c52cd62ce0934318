"""Policy defaults of the identity API (Keystone v3 names)."""

from __future__ import annotations

from oslo_policy import policy

from nimbus.policies.base import ADMIN_REQUIRED, CLOUD_READER, SERVICE_ROLE, rule_factory

_SELF = "user_id:%(target.user.id)s"


_rule = rule_factory("identity")


def _crud(
    noun: str,
    plural: str,
    path: str,
    *,
    read: str = CLOUD_READER,
    list_: str = CLOUD_READER,
    write: str = ADMIN_REQUIRED,
) -> list:
    item = f"{path}/{{{noun}_id}}"
    return [
        _rule(f"get_{noun}", read, f"Show a {noun}.", "GET", item),
        _rule(f"list_{plural}", list_, f"List {plural}.", "GET", path),
        _rule(f"create_{noun}", write, f"Create a {noun}.", "POST", path),
        _rule(f"update_{noun}", write, f"Update a {noun}.", "PATCH", item),
        _rule(f"delete_{noun}", write, f"Delete a {noun}.", "DELETE", item),
    ]


_PROJECT_READER = f"{CLOUD_READER} or project_id:%(target.project.id)s"
# Keystone's ADMIN_OR_SYSTEM_READER_OR_CRED_OWNER and ADMIN_OR_CRED_OWNER.
_CRED_OWNER = "user_id:%(target.credential.user_id)s"
_CRED_READER = f"{CLOUD_READER} or {_CRED_OWNER}"
_CRED_WRITER = f"{ADMIN_REQUIRED} or {_CRED_OWNER}"
_TOKEN_SUBJECT = f"{ADMIN_REQUIRED} or {SERVICE_ROLE} or user_id:%(target.token.user_id)s"

RULES = [
    *_crud(
        "domain",
        "domains",
        "/v3/domains",
        read=f"{CLOUD_READER} or domain_id:%(target.domain.id)s "
        "or project_domain_id:%(target.domain.id)s",
    ),
    *_crud(
        "project",
        "projects",
        "/v3/projects",
        read=_PROJECT_READER,
    ),
    _rule(
        "list_user_projects",
        f"{CLOUD_READER} or {_SELF}",
        "List the projects a user has roles on.",
        "GET",
        "/v3/users/{user_id}/projects",
    ),
    *[
        _rule(name, check, what, method, "/v3/projects/{project_id}/tags" + one)
        for name, check, what, method, one in (
            ("list_project_tags", _PROJECT_READER, "List a project's tags.", "GET", ""),
            ("get_project_tag", _PROJECT_READER, "Check a project's tag.", "HEAD", "/{tag}"),
            ("update_project_tags", ADMIN_REQUIRED, "Replace a project's tags.", "PUT", ""),
            ("create_project_tag", ADMIN_REQUIRED, "Add a tag to a project.", "PUT", "/{tag}"),
            ("delete_project_tags", ADMIN_REQUIRED, "Remove a project's tags.", "DELETE", ""),
            ("delete_project_tag", ADMIN_REQUIRED, "Remove a tag.", "DELETE", "/{tag}"),
        )
    ],
    *_crud("user", "users", "/v3/users", read=f"{CLOUD_READER} or {_SELF}"),
    # Keystone enforces no rule here: knowing the current password is the check.
    _rule(
        "change_password",
        "@",
        "Change a user's password, giving the current one.",
        "POST",
        "/v3/users/{user_id}/password",
    ),
    *_crud("group", "groups", "/v3/groups"),
    _rule(
        "list_groups_for_user",
        f"{CLOUD_READER} or {_SELF}",
        "List the groups a user belongs to.",
        "GET",
        "/v3/users/{user_id}/groups",
    ),
    _rule(
        "list_users_in_group",
        CLOUD_READER,
        "List a group's members.",
        "GET",
        "/v3/groups/{group_id}/users",
    ),
    _rule(
        "check_user_in_group",
        CLOUD_READER,
        "Check a membership.",
        "HEAD",
        "/v3/groups/{group_id}/users/{user_id}",
    ),
    _rule(
        "add_user_to_group",
        ADMIN_REQUIRED,
        "Add a user to a group.",
        "PUT",
        "/v3/groups/{group_id}/users/{user_id}",
    ),
    _rule(
        "remove_user_from_group",
        ADMIN_REQUIRED,
        "Remove a user from a group.",
        "DELETE",
        "/v3/groups/{group_id}/users/{user_id}",
    ),
    *_crud("role", "roles", "/v3/roles"),
    _rule(
        "list_implied_roles",
        CLOUD_READER,
        "List the roles a role implies.",
        "GET",
        "/v3/roles/{prior_role_id}/implies",
    ),
    _rule(
        "create_implied_role",
        ADMIN_REQUIRED,
        "Make a role imply another.",
        "PUT",
        "/v3/roles/{prior_role_id}/implies/{implied_role_id}",
    ),
    _rule(
        "delete_implied_role",
        ADMIN_REQUIRED,
        "Remove a role implication.",
        "DELETE",
        "/v3/roles/{prior_role_id}/implies/{implied_role_id}",
    ),
    _rule(
        "list_role_inference_rules",
        CLOUD_READER,
        "List every role implication.",
        "GET",
        "/v3/role_inferences",
    ),
    _rule(
        "check_grant",
        CLOUD_READER,
        "Check a role assignment.",
        "HEAD",
        "/v3/projects/{project_id}/users/{user_id}/roles/{role_id}",
    ),
    _rule(
        "list_grants",
        CLOUD_READER,
        "List the roles of an actor on a target.",
        "GET",
        "/v3/projects/{project_id}/users/{user_id}/roles",
    ),
    _rule(
        "create_grant",
        ADMIN_REQUIRED,
        "Assign a role.",
        "PUT",
        "/v3/projects/{project_id}/users/{user_id}/roles/{role_id}",
    ),
    _rule(
        "revoke_grant",
        ADMIN_REQUIRED,
        "Remove a role assignment.",
        "DELETE",
        "/v3/projects/{project_id}/users/{user_id}/roles/{role_id}",
    ),
    *[
        _rule(
            f"{verb}_system_{noun}_for_{actor}",
            check,
            f"{what} on the system.",
            method,
            f"/v3/system/{actor}s/{{{actor}_id}}/roles" + ("" if verb == "list" else "/{role_id}"),
        )
        for actor in ("user", "group")
        for verb, noun, check, what, method in (
            ("list", "grants", CLOUD_READER, f"List the roles of a {actor}", "GET"),
            ("check", "grant", CLOUD_READER, f"Check a role of a {actor}", "HEAD"),
            ("create", "grant", ADMIN_REQUIRED, f"Give a {actor} a role", "PUT"),
            ("revoke", "grant", ADMIN_REQUIRED, f"Take a role from a {actor}", "DELETE"),
        )
    ],
    _rule(
        "list_role_assignments",
        f"{CLOUD_READER} or {_SELF}",
        "List role assignments (one's own with ?user.id=<self>).",
        "GET",
        "/v3/role_assignments",
    ),
    *_crud(
        "credential",
        "credentials",
        "/v3/credentials",
        read=_CRED_READER,
        list_=_CRED_READER,
        write=_CRED_WRITER,
    ),
    *_crud("service", "services", "/v3/services"),
    *_crud("endpoint", "endpoints", "/v3/endpoints"),
    # Anyone may read regions, as in Keystone.
    *_crud("region", "regions", "/v3/regions", read="@", list_="@"),
    _rule("validate_token", _TOKEN_SUBJECT, "Validate a token.", "GET", "/v3/auth/tokens"),
    _rule("check_token", _TOKEN_SUBJECT, "Check a token.", "HEAD", "/v3/auth/tokens"),
    _rule("revoke_token", _TOKEN_SUBJECT, "Revoke a token.", "DELETE", "/v3/auth/tokens"),
]


def list_rules() -> list[policy.RuleDefault]:
    """Return the identity policy defaults."""
    return list(RULES)
