"""JSON Schema validation with messages that name the offending field.

Shared by the API layer (request bodies) and the services (values a
service checks itself, such as the targets of an image JSON-patch).
"""

from __future__ import annotations

from typing import Any

import jsonschema

from nimbus import exception

__all__ = ["validate"]

#: Compiled validators by schema id; each entry keeps its schema alive, so
#: an id is never reused for another schema while it is cached.  Callers
#: pass long-lived schema objects (module constants), which bounds it.
_VALIDATORS: dict[int, tuple[dict[str, Any], Any]] = {}


def validate(schema: dict[str, Any], document: Any, root: str) -> None:
    """Check *document* against *schema*.

    :param root: the name of the document's top-level key, used in messages.
    :raises ValidationError: naming the first offending field.
    """
    cached = _VALIDATORS.get(id(schema))
    if cached is not None and cached[0] is schema:
        validator = cached[1]
    else:
        validator = jsonschema.validators.validator_for(schema)(schema)
        _VALIDATORS[id(schema)] = (schema, validator)
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
