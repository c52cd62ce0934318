"""JSON-patch updates of images (``application/openstack-images-v2.1-json-patch``).

A patch is a list of ``{"op": "add"|"remove"|"replace", "path": "/<attr>",
"value": ...}``.  Paths are one level deep: ``/name``, ``/tags``,
``/hw_disk_bus``.  Glance's rules apply: read-only and reserved attributes
cannot be touched, core attributes cannot be removed, ``add`` of an existing
custom property and ``replace``/``remove`` of a missing one conflict.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from oslo_config import cfg

from nimbus import exception
from nimbus.common import validation
from nimbus.image import schema

__all__ = ["Change", "MEDIA_TYPES", "apply", "parse"]

#: Content types a PATCH request may use.
MEDIA_TYPES = (
    "application/openstack-images-v2.1-json-patch",
    "application/openstack-images-v2.0-json-patch",
)
#: The older media type names the operation by its key: ``{"replace": "/name", "value": ...}``.
V2_0 = MEDIA_TYPES[1]
_OPS = ("add", "remove", "replace")
#: Core attributes that can be set but never removed.
_CORE = frozenset(
    name
    for name, spec in schema.BASE_PROPERTIES.items()
    if spec.get("is_base", True) and name not in schema.READ_ONLY
)
#: Formats are fixed once data has been uploaded.
_FORMATS = ("disk_format", "container_format")


@dataclasses.dataclass(frozen=True)
class Change:
    """One operation of a patch, on one attribute."""

    op: str
    name: str
    value: Any = None


def _decode_path(path: Any) -> str:
    if not isinstance(path, str) or not path.startswith("/"):
        raise exception.BadRequest(reason=f"Invalid JSON pointer for this resource: {path!r}.")
    segments = [s.replace("~1", "/").replace("~0", "~") for s in path[1:].split("/")]
    if segments[0] == "locations":
        raise exception.Forbidden(message="Image locations cannot be changed through this API.")
    if len(segments) != 1:
        raise exception.BadRequest(reason=f"Nested paths are not allowed: {path!r}.")
    name = segments[0]
    if not name or len(name) > 255:
        raise exception.BadRequest(reason=f"Invalid JSON pointer for this resource: {path!r}.")
    return name


def _from_v2_0(item: dict[str, Any], index: int) -> dict[str, Any]:
    """Rewrite an operation of the older media type as the current one."""
    named = [op for op in _OPS if op in item]
    if len(named) != 1:
        raise exception.BadRequest(
            reason=f"Patch operation {index} must name exactly one of {', '.join(_OPS)}."
        )
    op = named[0]
    rest = {k: v for k, v in item.items() if k != op}
    return {"op": op, "path": item[op], **rest}


def parse(document: Any, media_type: str = MEDIA_TYPES[0]) -> list[Change]:
    """Return the changes of a patch document.

    :param media_type: the request's content type: :data:`V2_0` names each
        operation by its key (``{"replace": "/name", "value": "x"}``).
    :raises BadRequest: the document is not a list of valid operations.
    :raises Forbidden: an operation targets image locations.
    """
    if not isinstance(document, list):
        raise exception.BadRequest(
            reason="The request body must be a JSON array of patch operations."
        )
    changes = []
    for index, item in enumerate(document):
        if not isinstance(item, dict):
            raise exception.BadRequest(reason=f"Patch operation {index} must be a JSON object.")
        if media_type == V2_0:
            item = _from_v2_0(item, index)
        op = item.get("op")
        if op not in _OPS:
            raise exception.BadRequest(
                reason=f"Operation {op!r} is not supported; use one of {', '.join(_OPS)}."
            )
        allowed = {"op", "path"} if op == "remove" else {"op", "path", "value"}
        extra = set(item) - allowed
        if extra:
            raise exception.BadRequest(
                reason=f"Unexpected members in operation {index}: {', '.join(sorted(extra))}."
            )
        if op != "remove" and "value" not in item:
            raise exception.BadRequest(reason=f"Operation {index} ({op}) needs a 'value'.")
        changes.append(Change(op, _decode_path(item.get("path")), item.get("value")))
    return changes


def _check_value(conf: cfg.ConfigOpts, name: str, value: Any) -> Any:
    validation.validate(schema.property_schema(conf, name), value, name)
    if name == "tags":
        # Duplicates collapse, order kept.
        return list(dict.fromkeys(value))
    if name in ("min_disk", "min_ram"):
        # JSON Schema counts 512.0 as an integer; store and show 512.
        return int(value)
    return value


def apply(
    conf: cfg.ConfigOpts,
    current: Mapping[str, Any],
    changes: list[Change],
    *,
    status: str,
    may_set_owner: bool,
) -> dict[str, Any]:
    """Return the image's editable attributes after *changes*.

    :param current: the editable attributes: core ones, ``tags`` and the
        custom properties, all at the top level.
    :param status: the image's status (formats are fixed once data exists).
    :param may_set_owner: whether the caller may change ``owner``.
    :raises Forbidden: a read-only or reserved attribute, a core attribute
        removed, or formats changed after upload.
    :raises Conflict: add of a present custom property, replace or remove
        of a missing one.
    :raises ValidationError: a value of the wrong type or form.
    """
    result = dict(current)
    for change in changes:
        name = change.name
        if schema.is_reserved(name):
            raise exception.Forbidden(message=f"Attribute '{name}' is reserved.")
        if name in schema.READ_ONLY:
            raise exception.Forbidden(message=f"Attribute '{name}' is read-only.")
        if name == "owner" and not may_set_owner:
            raise exception.Forbidden(message="Only administrators may change an image's owner.")
        core = name in _CORE
        if change.op == "remove":
            if core:
                raise exception.Forbidden(message=f"Attribute '{name}' may not be removed.")
            if name not in result:
                raise exception.InvalidState(reason=f"Property {name} does not exist.")
            del result[name]
            continue
        if not core:
            if change.op == "add" and name in result:
                raise exception.InvalidState(reason=f"Property {name} already present.")
            if change.op == "replace" and name not in result:
                raise exception.InvalidState(reason=f"Property {name} does not exist.")
        value = _check_value(conf, name, change.value)
        if value is None and not core:
            # A nullable property such as kernel_id: null means "not set".
            result.pop(name, None)
            continue
        if name in _FORMATS and status != "queued" and value != current.get(name):
            raise exception.Forbidden(
                message=f"Attribute '{name}' can only be changed while the image is queued."
            )
        result[name] = value
    return result
