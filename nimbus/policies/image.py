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


_rule = rule_factory("image")


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
]


def list_rules() -> list[policy.RuleDefault]:
    """Return the image rules."""
    return list(RULES)
