"""Request validation: JSON Schema for bodies, small parsers for query strings."""

from __future__ import annotations

from typing import Any

import falcon

from nimbus import exception
from nimbus.common.validation import validate
from nimbus.identity.common import Page

__all__ = [
    "body",
    "bool_param",
    "nullable",
    "create_schema",
    "update_schema",
    "page",
    "validate",
    "NAME",
    "DESCRIPTION",
    "ID",
    "BOOLEAN",
]

ID = {"type": "string", "minLength": 1, "maxLength": 64}
NAME = {"type": "string", "minLength": 1, "maxLength": 255, "pattern": r"[\S]"}
DESCRIPTION = {"type": ["string", "null"], "maxLength": 65535}
BOOLEAN = {"type": "boolean"}


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """Return *schema* that also accepts ``null`` (meaning "not given")."""
    types = schema.get("type")
    if isinstance(types, str):
        types = [types]
    return {**schema, "type": sorted({*(types or []), "null"})}


def create_schema(properties: dict[str, Any], *required: str) -> dict[str, Any]:
    """Return the schema of a create body: an object of *properties*, with *required*."""
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    return schema


def update_schema(properties: dict[str, Any], *fixed: str) -> dict[str, Any]:
    """Return the schema of an update body: at least one of *properties*, none of *fixed*."""
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if fixed:
        schema["not"] = {"anyOf": [{"required": [name]} for name in fixed]}
    schema["minProperties"] = 1
    return schema


def body(req: falcon.Request, key: str, schema: dict[str, Any]) -> dict[str, Any]:
    """Return the object under *key* in the JSON body, validated against *schema*.

    :raises ValidationError: the body is missing, not an object, or invalid.
    """
    document = req.context.get("json")
    if not isinstance(document, dict) or key not in document:
        raise exception.ValidationError(field=key, reason=f"'{key}' is a required property")
    value = document[key]
    if not isinstance(value, dict):
        raise exception.ValidationError(field=key, reason="must be an object")
    validate(schema, value, key)
    return value


def bool_param(req: falcon.Request, name: str) -> bool | None:
    """Parse a boolean query parameter as Keystone does; None when absent.

    ``0``, ``false``, ``no`` and ``off`` (any case) are false; any other
    value, including an empty one, is true.
    """
    raw = req.get_param(name, default=None)
    if raw is None:
        return None
    return raw.strip().lower() not in ("0", "false", "no", "off")


def page(req: falcon.Request, max_limit: int) -> Page:
    """Parse ``limit`` and ``marker``; the limit is capped at *max_limit*."""
    raw = req.get_param("limit", default=None)
    limit = max_limit
    if raw is not None:
        try:
            limit = int(raw)
        except ValueError:
            raise exception.ValidationError(field="limit", reason="must be an integer") from None
        if limit < 1:
            raise exception.ValidationError(field="limit", reason="must be at least 1")
        limit = min(limit, max_limit)
    return Page(limit=limit, marker=req.get_param("marker", default=None) or None)
