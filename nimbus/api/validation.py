"""Request validation: JSON Schema for bodies, small parsers for query strings."""

from __future__ import annotations

from typing import Any

import falcon
import jsonschema

from nimbus import exception
from nimbus.identity.common import Page

__all__ = [
    "body",
    "bool_param",
    "nullable",
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


_VALIDATORS: dict[int, Any] = {}


def validate(schema: dict[str, Any], document: Any, root: str) -> None:
    """Check *document* against *schema*.

    :param root: the name of the document's top-level key, used in messages.
    :raises ValidationError: naming the first offending field.
    """
    validator = _VALIDATORS.get(id(schema))
    if validator is None:
        cls = jsonschema.validators.validator_for(schema)
        validator = _VALIDATORS[id(schema)] = cls(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(document))
    if error is None:
        return
    path = "/".join(str(p) for p in (root, *error.absolute_path))
    if error.validator == "additionalProperties":
        reason = "Additional properties are not allowed: " + error.message.split("(", 1)[-1].rstrip(
            ")"
        )
    elif error.validator == "required":
        reason = error.message
    else:
        reason = f"{_describe(error)}"
    raise exception.ValidationError(field=path, reason=reason)


def _describe(error: jsonschema.ValidationError) -> str:
    value = error.instance
    shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
    if error.validator == "type":
        return f"{shown} is not of type {error.validator_value}"
    if error.validator in ("minLength", "maxLength"):
        bound = "at least" if error.validator == "minLength" else "at most"
        return f"length must be {bound} {error.validator_value}"
    if error.validator == "enum":
        return f"{shown} is not one of {error.validator_value}"
    return error.message if len(error.message) < 200 else error.message[:197] + "..."


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
