"""The JSON schemas of Glance's metadata definitions (``/v2/schemas/metadefs/*``).

The documents are Glance's (``glance/api/v2/metadef_*.py`` and
``glance/schema.py``), served as they are and used to validate request
bodies, so a client reading them sees what the API enforces.
"""

from __future__ import annotations

import copy
from typing import Any

from nimbus.image.schema import collection_schema

__all__ = ["DOCUMENTS", "document", "item_schema"]

_TYPES = ["array", "boolean", "integer", "number", "object", "string", None]
_READ_ONLY = {"readOnly": True, "type": "string"}


def _timestamps(what: str) -> dict[str, Any]:
    return {
        "created_at": {
            "type": "string",
            "readOnly": True,
            "description": f"Date and time of {what} creation",
            "format": "date-time",
        },
        "updated_at": {
            "type": "string",
            "readOnly": True,
            "description": f"Date and time of the last {what} modification",
            "format": "date-time",
        },
    }


def _property_attributes() -> dict[str, Any]:
    return {
        "name": {"type": "string", "maxLength": 80},
        "title": {"type": "string"},
        "description": {"type": "string"},
        "operators": {"type": "array", "items": {"type": "string"}},
        "type": {"type": "string", "enum": _TYPES},
        "required": {"$ref": "#/definitions/stringArray"},
        "minimum": {"type": "number"},
        "maximum": {"type": "number"},
        "maxLength": {"$ref": "#/definitions/positiveInteger"},
        "minLength": {"$ref": "#/definitions/positiveIntegerDefault0"},
        "pattern": {"type": "string", "format": "regex"},
        "enum": {"type": "array"},
        "readonly": {"type": "boolean"},
        "default": {},
        "items": {
            "type": "object",
            "properties": {
                "type": {"type": "string", "enum": _TYPES},
                "enum": {"type": "array"},
            },
        },
        "maxItems": {"$ref": "#/definitions/positiveInteger"},
        "minItems": {"$ref": "#/definitions/positiveIntegerDefault0"},
        "uniqueItems": {"type": "boolean", "default": False},
        "additionalItems": {"type": "boolean"},
    }


def _definitions(*, min_items: bool = False) -> dict[str, Any]:
    string_array: dict[str, Any] = {"type": "array", "items": {"type": "string"}}
    if min_items:
        string_array["minItems"] = 1
    string_array["uniqueItems"] = True
    return {
        "positiveInteger": {"type": "integer", "minimum": 0},
        "positiveIntegerDefault0": {
            "allOf": [{"$ref": "#/definitions/positiveInteger"}, {"default": 0}]
        },
        "stringArray": string_array,
    }


def _namespace_definitions() -> dict[str, Any]:
    definitions = _definitions()
    definitions["property"] = {
        "type": "object",
        "additionalProperties": {
            "type": "object",
            "required": ["title", "type"],
            "properties": _property_attributes(),
        },
    }
    return definitions


def _named_list(extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "type": "array",
        "items": {
            "type": "object",
            "properties": {"name": {"type": "string"}, **(extra or {})},
        },
    }


def _namespace() -> dict[str, Any]:
    properties = {
        "namespace": {
            "type": "string",
            "description": "The unique namespace text.",
            "maxLength": 80,
        },
        "display_name": {
            "type": "string",
            "description": "The user friendly name for the namespace. Used by UI if available.",
            "maxLength": 80,
        },
        "description": {
            "type": "string",
            "description": "Provides a user friendly description of the namespace.",
            "maxLength": 500,
        },
        "visibility": {
            "type": "string",
            "description": "Scope of namespace accessibility.",
            "enum": ["public", "private"],
        },
        "protected": {
            "type": "boolean",
            "description": "If true, namespace will not be deletable.",
        },
        "owner": {"type": "string", "description": "Owner of the namespace.", "maxLength": 255},
        "created_at": {
            "type": "string",
            "readOnly": True,
            "description": "Date and time of namespace creation",
            "format": "date-time",
        },
        "updated_at": {
            "type": "string",
            "readOnly": True,
            "description": "Date and time of the last namespace modification",
            "format": "date-time",
        },
        "schema": dict(_READ_ONLY),
        "self": dict(_READ_ONLY),
        "resource_type_associations": _named_list(
            {"prefix": {"type": "string"}, "properties_target": {"type": "string"}}
        ),
        "properties": {"$ref": "#/definitions/property"},
        "objects": _named_list(
            {
                "description": {"type": "string"},
                "required": {"$ref": "#/definitions/stringArray"},
                "properties": {"$ref": "#/definitions/property"},
            }
        ),
        "tags": _named_list(),
    }
    return _schema("namespace", properties, ["namespace"], _namespace_definitions())


def _object() -> dict[str, Any]:
    properties = {
        "name": {"type": "string", "maxLength": 80},
        "description": {"type": "string"},
        "required": {"$ref": "#/definitions/stringArray"},
        "properties": {"$ref": "#/definitions/property"},
        "schema": dict(_READ_ONLY),
        "self": dict(_READ_ONLY),
        **_timestamps("object"),
    }
    return _schema("object", properties, ["name"], _namespace_definitions())


def _property(*, require_name: bool = True) -> dict[str, Any]:
    required = ["type", "title", "name"] if require_name else ["type", "title"]
    return _schema("property", _property_attributes(), required, _definitions(min_items=True))


def _tag() -> dict[str, Any]:
    properties = {"name": {"type": "string", "maxLength": 80}, **_timestamps("tag")}
    return _schema("tag", properties, ["name"], None)


def _tags_create() -> dict[str, Any]:
    items = {
        "type": "object",
        "properties": {"name": {"type": "string"}},
        "required": ["name"],
        "additionalProperties": False,
    }
    return _schema("tags", {"tags": {"type": "array", "items": items}}, None, None)


def _resource_type() -> dict[str, Any]:
    properties = {
        "name": {
            "type": "string",
            "description": (
                "Resource type names should be aligned with Heat resource types whenever "
                "possible: https://docs.openstack.org/heat/latest/template_guide/openstack.html"
            ),
            "maxLength": 80,
        },
        "prefix": {
            "type": "string",
            "description": (
                "Specifies the prefix to use for the given resource type. Any properties in "
                "the namespace should be prefixed with this prefix when being applied to the "
                "specified resource type. Must include prefix separator (e.g. a colon :)."
            ),
            "maxLength": 80,
        },
        "properties_target": {
            "type": "string",
            "description": (
                "Some resource types allow more than one key / value pair per instance.  For "
                "example, Cinder allows user and image metadata on volumes. Only the image "
                "properties metadata is evaluated by Nova (scheduling or drivers). This "
                "property allows a namespace target to remove the ambiguity."
            ),
            "maxLength": 80,
        },
        **_timestamps("resource type association"),
    }
    # Glance words this one differently from the other timestamps.
    properties["created_at"]["description"] = "Date and time of resource type association"
    return _schema("resource_type_association", properties, ["name"], None)


def _schema(
    name: str,
    properties: dict[str, Any],
    required: list[str] | None,
    definitions: dict[str, Any] | None,
) -> dict[str, Any]:
    # glance.schema.Schema.raw()
    raw: dict[str, Any] = {"name": name, "properties": properties, "additionalProperties": False}
    if definitions:
        raw["definitions"] = definitions
    if required:
        raw["required"] = required
    return raw


def _collection(name: str, item: dict[str, Any], *, as_dict: bool = False) -> dict[str, Any]:
    # glance.schema.CollectionSchema.raw() / DictCollectionSchema.raw(): the
    # item's definitions move up to the collection.
    item = dict(item)
    definitions = item.pop("definitions", None)
    if as_dict:
        members = {"type": "object", "additionalProperties": item}
    else:
        members = {"type": "array", "items": item}
    raw = collection_schema(name, members)
    if definitions:
        raw["definitions"] = definitions
    return raw


DOCUMENTS: dict[str, dict[str, Any]] = {
    "namespace": _namespace(),
    "namespaces": _collection("namespaces", _namespace()),
    "object": _object(),
    "objects": _collection("objects", _object()),
    "property": _property(),
    "properties": _collection("properties", _property(require_name=False), as_dict=True),
    "tag": _tag(),
    "tags": _collection("tags", _tag()),
    "resource_type": _resource_type(),
    "resource_types": _collection("resource_type_associations", _resource_type()),
}

#: What request bodies are checked against, beyond the documents above.
_VALIDATORS: dict[str, dict[str, Any]] = {
    "property_in_object": _property(require_name=False),
    "tags_create": _tags_create(),
}


def document(name: str) -> dict[str, Any]:
    """Return a copy of the schema document *name* (``namespace``, ``tags`` ...)."""
    return copy.deepcopy(DOCUMENTS[name])


def item_schema(name: str) -> dict[str, Any]:
    """Return the schema a request body for *name* is validated against."""
    return _VALIDATORS.get(name) or DOCUMENTS[name]
