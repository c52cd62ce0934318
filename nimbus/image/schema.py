"""The image attributes: which are core, which read-only, and their JSON schemas.

The same definitions validate create and patch requests and are served
as ``/v2/schemas/image`` for clients that read them.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

from oslo_config import cfg

from nimbus import exception
from nimbus.common.validation import validate

__all__ = [
    "BASE_PROPERTIES",
    "CORE_COLUMNS",
    "MEMBER_STATUSES",
    "READ_ONLY",
    "RESERVED",
    "STATUSES",
    "VISIBILITIES",
    "create_values",
    "image_schema",
    "images_schema",
    "member_schema",
    "members_schema",
    "property_schema",
]

STATUSES = (
    "queued",
    "saving",
    "active",
    "killed",
    "deleted",
    "pending_delete",
    "deactivated",
    "uploading",
    "importing",
)
VISIBILITIES = ("public", "private", "shared", "community")
MEMBER_STATUSES = ("pending", "accepted", "rejected")

# \Z, not $: a JSON-schema pattern is searched with Python's re, where $ also
# matches before a trailing newline.
_UUID = r"^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}\Z"
_TIMESTAMP = {"type": "string", "format": "date-time", "readOnly": True}

#: Attributes a caller may never set; ``owner`` is settable by admins only.
READ_ONLY = frozenset(
    {
        "id",
        "status",
        "checksum",
        "os_hash_algo",
        "os_hash_value",
        "size",
        "virtual_size",
        "created_at",
        "updated_at",
        "self",
        "file",
        "schema",
        "direct_url",
        "locations",
        "stores",
    }
)
#: Names no image may use as a property.
RESERVED = frozenset({"location", "deleted", "deleted_at"})
#: Properties with this prefix are Glance's own (the import lock ...): users may not set them.
RESERVED_PREFIX = "os_glance"


def is_reserved(name: str) -> bool:
    """Tell whether *name* is a property only the image service sets."""
    return name in RESERVED or name.startswith(RESERVED_PREFIX)


#: Attributes kept in columns of the ``images`` table (the rest are properties).
CORE_COLUMNS = (
    "name",
    "visibility",
    "protected",
    "os_hidden",
    "owner",
    "disk_format",
    "container_format",
    "min_disk",
    "min_ram",
)

BASE_PROPERTIES: dict[str, dict[str, Any]] = {
    "id": {"type": "string", "pattern": _UUID, "description": "An identifier for the image"},
    "name": {"type": ["null", "string"], "maxLength": 255, "description": "Descriptive name"},
    "status": {"type": "string", "enum": list(STATUSES), "readOnly": True},
    "visibility": {"type": "string", "enum": list(VISIBILITIES)},
    "protected": {"type": "boolean", "description": "If true, image will not be deletable."},
    "os_hidden": {"type": "boolean", "description": "If true, image will not appear in lists."},
    "checksum": {"type": ["null", "string"], "maxLength": 32, "readOnly": True},
    "os_hash_algo": {"type": ["null", "string"], "maxLength": 64, "readOnly": True},
    "os_hash_value": {"type": ["null", "string"], "maxLength": 128, "readOnly": True},
    "owner": {"type": ["null", "string"], "maxLength": 255},
    "size": {"type": ["null", "integer"], "readOnly": True},
    "virtual_size": {"type": ["null", "integer"], "readOnly": True},
    "container_format": {"type": ["null", "string"], "enum": [None]},
    "disk_format": {"type": ["null", "string"], "enum": [None]},
    "created_at": _TIMESTAMP,
    "updated_at": _TIMESTAMP,
    "tags": {"type": "array", "items": {"type": "string", "maxLength": 255}},
    "min_ram": {"type": "integer", "minimum": 0, "maximum": 2**31 - 1},
    "min_disk": {"type": "integer", "minimum": 0, "maximum": 2**31 - 1},
    "kernel_id": {"type": ["null", "string"], "pattern": _UUID, "is_base": False},
    "ramdisk_id": {"type": ["null", "string"], "pattern": _UUID, "is_base": False},
    "self": {"type": "string", "readOnly": True},
    "file": {"type": "string", "readOnly": True},
    "schema": {"type": "string", "readOnly": True},
    "locations": {"type": "array", "readOnly": True},
    "direct_url": {"type": "string", "readOnly": True},
    "stores": {"type": "string", "readOnly": True},
}

#: Schemas of custom properties; every other custom property is a string.
_CUSTOM = {"type": "string", "maxLength": 65535}


def _with_formats(conf: cfg.ConfigOpts) -> dict[str, dict[str, Any]]:
    properties = copy.deepcopy(BASE_PROPERTIES)
    properties["disk_format"]["enum"] = [None, *conf.image.disk_formats]
    properties["container_format"]["enum"] = [None, *conf.image.container_formats]
    return properties


@functools.lru_cache(maxsize=8)
def _format_schemas(
    disk_formats: tuple[str, ...], container_formats: tuple[str, ...]
) -> dict[str, dict[str, Any]]:
    # One object per configured list: validators are cached per schema object.
    return {
        "disk_format": {**BASE_PROPERTIES["disk_format"], "enum": [None, *disk_formats]},
        "container_format": {
            **BASE_PROPERTIES["container_format"],
            "enum": [None, *container_formats],
        },
    }


def property_schema(conf: cfg.ConfigOpts, name: str) -> dict[str, Any]:
    """Return the schema a value of attribute *name* must match."""
    if name in ("disk_format", "container_format"):
        formats = _format_schemas(
            tuple(conf.image.disk_formats), tuple(conf.image.container_formats)
        )
        return formats[name]
    return BASE_PROPERTIES.get(name, _CUSTOM)


def create_values(conf: cfg.ConfigOpts, document: Any) -> dict[str, Any]:
    """Return the attributes of a create request's body (the bare image object).

    A ``null`` means "not given" (clients send explicit nulls), except for
    the attributes a client may set to null on purpose.

    :raises BadRequest: the body is not a JSON object.
    :raises Forbidden: a reserved or read-only attribute (``id`` aside) is given.
    :raises ValidationError: a name or a value is invalid.
    """
    if not isinstance(document, dict):
        raise exception.BadRequest(reason="The request body must be a JSON object.")
    values: dict[str, Any] = {}
    for name, value in document.items():
        if is_reserved(name):
            raise exception.Forbidden(message=f"Attribute '{name}' is reserved.")
        if name in READ_ONLY and name != "id":
            raise exception.Forbidden(message=f"Attribute '{name}' is read-only.")
        if not name or len(name) > 255:
            raise exception.ValidationError(field=name[:40], reason="invalid property name")
        if value is None and name not in ("name", "disk_format", "container_format"):
            continue
        validate(property_schema(conf, name), value, name)
        values[name] = value
    return values


def image_schema(conf: cfg.ConfigOpts) -> dict[str, Any]:
    """Return the ``/v2/schemas/image`` document."""
    return {
        "name": "image",
        "properties": _with_formats(conf),
        "additionalProperties": {"type": "string"},
        "links": [
            {"rel": "self", "href": "{self}"},
            {"rel": "enclosure", "href": "{file}"},
            {"rel": "describedby", "href": "{schema}"},
        ],
    }


def collection_schema(name: str, members: dict[str, Any]) -> dict[str, Any]:
    """Return the schema of a Glance listing: *members* under *name*, and its page links."""
    return {
        "name": name,
        "properties": {
            name: members,
            "first": {"type": "string"},
            "next": {"type": "string"},
            "schema": {"type": "string"},
        },
        "links": [
            {"rel": "first", "href": "{first}"},
            {"rel": "next", "href": "{next}"},
            {"rel": "describedby", "href": "{schema}"},
        ],
    }


def images_schema(conf: cfg.ConfigOpts) -> dict[str, Any]:
    """Return the ``/v2/schemas/images`` document."""
    return collection_schema("images", {"type": "array", "items": image_schema(conf)})


def member_schema() -> dict[str, Any]:
    """Return the ``/v2/schemas/member`` document."""
    return {
        "name": "member",
        "properties": {
            "created_at": {
                "type": "string",
                "description": "Date and time of image member creation",
            },
            "image_id": {"type": "string", "pattern": _UUID},
            "member_id": {"type": "string", "description": "An identifier for the image member"},
            "schema": {"type": "string", "readOnly": True},
            "status": {"type": "string", "enum": list(MEMBER_STATUSES)},
            "updated_at": {"type": "string"},
        },
    }


def members_schema() -> dict[str, Any]:
    """Return the ``/v2/schemas/members`` document."""
    return {
        "name": "members",
        "properties": {
            "members": {"type": "array", "items": member_schema()},
            "schema": {"type": "string"},
        },
        "links": [{"rel": "schema", "href": "{schema}"}],
    }


def _task_properties(*, full: bool) -> dict[str, Any]:
    nullable_object = {"type": ["null", "object"]}
    properties: dict[str, Any] = {
        "id": {"type": "string", "pattern": _UUID, "description": "An identifier for the task"},
        "type": {
            "type": "string",
            "enum": ["import", "api_image_import", "location_import"],
            "description": "The type of task represented by this content",
        },
        "status": {
            "type": "string",
            "enum": ["pending", "processing", "success", "failure"],
            "description": "The current status of this task",
        },
        "input": {**nullable_object, "description": "The parameters required by task, JSON blob"},
        "result": {**nullable_object, "description": "The result of current task, JSON blob"},
        "owner": {"type": "string", "description": "An identifier for the owner of this task"},
        "message": {
            "type": "string",
            "description": "Human-readable informative message only included when appropriate"
            " (usually on failure)",
        },
        "image_id": {"type": "string", "description": "Image associated with the task"},
        "request_id": {"type": "string", "description": "Human-readable informative request-id"},
        "user_id": {"type": "string", "description": "User associated with the task"},
        "expires_at": {
            "type": ["null", "string"],
            "description": "Datetime when this resource would be subject to removal",
        },
        "created_at": {"type": "string", "description": "Datetime when this resource was created"},
        "updated_at": {"type": "string", "description": "Datetime when this resource was updated"},
        "self": {"type": "string", "readOnly": True},
        "schema": {"type": "string", "readOnly": True},
    }
    if not full:
        # A listing shows tasks without their input, result and message.
        for name in ("input", "result", "message"):
            del properties[name]
    return properties


_TASK_LINKS = [
    {"rel": "self", "href": "{self}"},
    {"rel": "describedby", "href": "{schema}"},
]


def task_schema() -> dict[str, Any]:
    """Return the ``/v2/schemas/task`` document."""
    return {"name": "task", "properties": _task_properties(full=True), "links": _TASK_LINKS}


def tasks_schema() -> dict[str, Any]:
    """Return the ``/v2/schemas/tasks`` document (its items are the listed view)."""
    item = {"name": "task", "properties": _task_properties(full=False), "links": _TASK_LINKS}
    return collection_schema("tasks", {"type": "array", "items": item})
