"""Policy defaults of the image API (Glance v2 names, ``image:`` prefix).

Which images a caller can see at all (owner, public, community, members)
is decided by the image service; these rules decide what a caller may do
with an image it can see.  The target carries ``project_id`` (the owner),
``visibility`` and, for member updates, ``member_id``.
"""

from __future__ import annotations

from oslo_policy import policy

from nimbus.policies.base import ADMIN_REQUIRED, rule_factory

READER = f"{ADMIN_REQUIRED} or role:reader"
MEMBER = f"{ADMIN_REQUIRED} or role:member"
OWNER = f"{ADMIN_REQUIRED} or (role:member and project_id:%(project_id)s)"
_IMAGE = "/v2/images/{image_id}"
_NS = "/v2/metadefs/namespaces/{namespace}"
#: Glance's ADMIN_OR_PROJECT_READER_GET_NAMESPACE: private namespaces are
#: also hidden by the service from other projects.
NAMESPACE_READER = (
    f"{ADMIN_REQUIRED} or (role:reader and (project_id:%(project_id)s or 'public':%(visibility)s))"
)


_rule = rule_factory("image")

#: Glance's blanket rule of the tasks API: cloud admins only by default.
TASKS_API_ACCESS = policy.DocumentedRuleDefault(
    name="image:tasks_api_access",
    check_str=ADMIN_REQUIRED,
    description="Use the tasks API at all (every /v2/tasks call checks it first).",
    operations=[
        {"method": "GET", "path": "/v2/tasks"},
        {"method": "POST", "path": "/v2/tasks"},
        {"method": "GET", "path": "/v2/tasks/{task_id}"},
    ],
)


RULES = [
    _rule("add_image", OWNER, "Create an image.", "POST", "/v2/images"),
    _rule("get_images", READER, "List images.", "GET", "/v2/images"),
    _rule("get_image", READER, "Show an image.", "GET", _IMAGE),
    _rule("modify_image", OWNER, "Update an image or its tags.", "PATCH", _IMAGE),
    _rule("delete_image", OWNER, "Delete an image.", "DELETE", _IMAGE),
    _rule("publicize_image", ADMIN_REQUIRED, "Make an image public.", "PATCH", _IMAGE),
    _rule("communitize_image", OWNER, "Make an image a community image.", "PATCH", _IMAGE),
    _rule("upload_image", OWNER, "Upload an image's data.", "PUT", _IMAGE + "/file"),
    _rule("download_image", READER, "Download an image's data.", "GET", _IMAGE + "/file"),
    # Glance's defaults for several stores: copying to more stores and
    # removing the data from one are for cloud admins; reading where the
    # data is for the owner's readers too.
    _rule(
        "copy_image",
        ADMIN_REQUIRED,
        "Copy an active image's data to other stores (the copy-image import).",
        "POST",
        _IMAGE + "/import",
    ),
    _rule(
        "get_image_location",
        f"{ADMIN_REQUIRED} or (role:reader and project_id:%(project_id)s)",
        "Read where an image's data is stored.",
        "DELETE",
        "/v2/stores/{store_id}/{image_id}",
    ),
    _rule(
        "delete_image_location",
        ADMIN_REQUIRED,
        "Remove an image's data from one store.",
        "DELETE",
        "/v2/stores/{store_id}/{image_id}",
    ),
    _rule("deactivate", OWNER, "Deactivate an image.", "POST", _IMAGE + "/actions/deactivate"),
    _rule("reactivate", OWNER, "Reactivate an image.", "POST", _IMAGE + "/actions/reactivate"),
    _rule("add_member", OWNER, "Share an image with a project.", "POST", _IMAGE + "/members"),
    _rule("get_members", READER, "List an image's members.", "GET", _IMAGE + "/members"),
    _rule("get_member", READER, "Show an image member.", "GET", _IMAGE + "/members/{member_id}"),
    _rule(
        "modify_member",
        f"{ADMIN_REQUIRED} or (role:member and project_id:%(member_id)s)",
        "Accept or reject an image shared with the caller's project.",
        "PUT",
        _IMAGE + "/members/{member_id}",
    ),
    _rule(
        "delete_member",
        OWNER,
        "Stop sharing an image with a project.",
        "DELETE",
        _IMAGE + "/members/{member_id}",
    ),
    TASKS_API_ACCESS,
    # Glance's per-operation task rules default to its "default" rule
    # (anyone); here a reader may read and a member create, so opening
    # tasks_api_access alone never serves a caller without a role.
    _rule("get_tasks", READER, "List tasks.", "GET", "/v2/tasks"),
    _rule("get_task", READER, "Show a task.", "GET", "/v2/tasks/{task_id}"),
    _rule("add_task", MEMBER, "Create a task.", "POST", "/v2/tasks"),
    # -- metadata definitions: anyone may read, cloud admins write (Glance's defaults)
    _rule("get_metadef_namespaces", READER, "List namespaces.", "GET", "/v2/metadefs/namespaces"),
    _rule("get_metadef_namespace", NAMESPACE_READER, "Show a namespace.", "GET", _NS),
    _rule(
        "add_metadef_namespace",
        ADMIN_REQUIRED,
        "Create a namespace.",
        "POST",
        "/v2/metadefs/namespaces",
    ),
    _rule("modify_metadef_namespace", ADMIN_REQUIRED, "Update a namespace.", "PUT", _NS),
    _rule("delete_metadef_namespace", ADMIN_REQUIRED, "Delete a namespace.", "DELETE", _NS),
    # Objects, properties and tags: the same five rules each (a property's delete is "remove").
    *[
        _rule(f"{verb}_metadef_{noun}", check, f"{what} {article} {noun}.", method, _NS + path)
        for noun, plural, article, delete in (
            ("object", "objects", "an", "delete"),
            ("property", "properties", "a", "remove"),
            ("tag", "tags", "a", "delete"),
        )
        for verb, check, what, method, path in (
            ("get", NAMESPACE_READER, "Show", "GET", f"/{plural}/{{name}}"),
            ("add", ADMIN_REQUIRED, "Create", "POST", f"/{plural}"),
            ("modify", ADMIN_REQUIRED, "Update", "PUT", f"/{plural}/{{name}}"),
            (delete, ADMIN_REQUIRED, "Delete", "DELETE", f"/{plural}/{{name}}"),
        )
        if (noun, verb) != ("tag", "add")
    ],
    *[
        _rule(
            f"get_metadef_{plural}", NAMESPACE_READER, f"List {plural}.", "GET", f"{_NS}/{plural}"
        )
        for plural in ("objects", "properties", "tags")
    ],
    _rule("add_metadef_tag", ADMIN_REQUIRED, "Create a tag.", "POST", _NS + "/tags/{name}"),
    _rule("add_metadef_tags", ADMIN_REQUIRED, "Create tags.", "POST", _NS + "/tags"),
    _rule("delete_metadef_tags", ADMIN_REQUIRED, "Delete all tags.", "DELETE", _NS + "/tags"),
    _rule(
        "list_metadef_resource_types",
        READER,
        "List resource types.",
        "GET",
        "/v2/metadefs/resource_types",
    ),
    _rule(
        "get_metadef_resource_type",
        NAMESPACE_READER,
        "List a namespace's resource type associations.",
        "GET",
        _NS + "/resource_types",
    ),
    _rule(
        "add_metadef_resource_type_association",
        ADMIN_REQUIRED,
        "Associate a namespace with a resource type.",
        "POST",
        _NS + "/resource_types",
    ),
    _rule(
        "remove_metadef_resource_type_association",
        ADMIN_REQUIRED,
        "End a resource type association.",
        "DELETE",
        _NS + "/resource_types/{name}",
    ),
]


def list_rules() -> list[policy.RuleDefault]:
    """Return the image rules."""
    return list(RULES)
