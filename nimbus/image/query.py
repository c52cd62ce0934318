"""Parse image-list query strings (Glance v2 filters, sorting and paging).

Supported: ``name``, ``status``, ``visibility``, ``owner``, ``tag``
(repeatable, all must match), ``disk_format``, ``container_format``,
``member_status``, ``size_min``/``size_max``, ``created_at``/``updated_at``
with an operator (``gte:2026-01-01T00:00:00Z``), ``protected``,
``os_hidden``, ``id``/``name``/``status``/formats with ``in:a,b``, any
other key as a custom-property equality filter, ``limit``, ``marker``,
``sort_key``/``sort_dir`` (repeatable) or ``sort=key:dir,...``.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping
from typing import Any

from nimbus import exception
from nimbus.image import schema

__all__ = ["SORT_KEYS", "ImageQuery", "glance_limit", "parse"]

SORT_KEYS = (
    "name",
    "status",
    "container_format",
    "disk_format",
    "size",
    "id",
    "created_at",
    "updated_at",
    "visibility",
    "owner",
    "min_disk",
    "min_ram",
    "virtual_size",
)
_OPERATORS = ("gt", "gte", "lt", "lte", "eq", "neq")
_IN_FIELDS = ("id", "name", "status", "container_format", "disk_format")
_NOT_PROPERTIES = frozenset(
    {
        "limit",
        "marker",
        "sort_key",
        "sort_dir",
        "sort",
        "tag",
        "size_min",
        "size_max",
        "created_at",
        "updated_at",
        "member_status",
        "protected",
        "os_hidden",
        "visibility",
        "owner",
        *_IN_FIELDS,
    }
)


@dataclasses.dataclass
class ImageQuery:
    """A parsed image-list request.

    ``equals`` maps a column to the values it may take (one, or several from
    ``in:``); ``ranges`` holds (column, operator, value) triples.
    """

    limit: int
    marker: str | None = None
    sort: list[tuple[str, str]] = dataclasses.field(
        default_factory=lambda: [("created_at", "desc"), ("id", "desc")]
    )
    visibility: str | None = None
    member_status: str = "accepted"
    equals: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    ranges: list[tuple[str, str, Any]] = dataclasses.field(default_factory=list)
    tags: list[str] = dataclasses.field(default_factory=list)
    properties: dict[str, str] = dataclasses.field(default_factory=dict)
    protected: bool | None = None
    os_hidden: bool | None = False


def glance_limit(raw: str | None, default: int) -> int:
    """Return the ``limit`` of a tasks or metadefs listing, *default* when absent.

    :raises BadRequest: not an integer, or negative (Glance's messages).
    """
    if raw is None:
        return default
    try:
        limit = int(raw)
    except ValueError:
        raise exception.BadRequest(reason="limit param must be an integer") from None
    if limit < 0:
        raise exception.BadRequest(reason="limit param must be positive")
    return limit


def _one(params: Mapping[str, Any], name: str) -> str | None:
    value = params.get(name)
    if isinstance(value, list):
        if len(value) > 1:
            raise exception.BadRequest(reason=f"Give the '{name}' parameter only once.")
        value = value[0]
    return value


def _many(params: Mapping[str, Any], name: str) -> list[str]:
    value = params.get(name)
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _choice(params: Mapping[str, Any], name: str, allowed: tuple[str, ...]) -> str | None:
    value = _one(params, name)
    if value is not None and value not in allowed:
        raise exception.BadRequest(
            reason=f"Invalid {name} {value!r}; use one of {', '.join(allowed)}."
        )
    return value


def _bool(name: str, raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("true", "1", "yes", "on"):
        return True
    if lowered in ("false", "0", "no", "off"):
        return False
    raise exception.BadRequest(reason=f"Invalid value {raw!r} for '{name}': use true or false.")


def _int(name: str, raw: str, minimum: int = 0) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise exception.BadRequest(reason=f"'{name}' must be an integer, not {raw!r}.") from None
    if value < minimum or value > 2**63 - 1:
        raise exception.BadRequest(reason=f"'{name}' must be between {minimum} and 2**63-1.")
    return value


def _timestamp(name: str, raw: str) -> datetime.datetime:
    text = raw.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        value = datetime.datetime.fromisoformat(text)
        if value.tzinfo is not None:
            value = value.astimezone(datetime.UTC).replace(tzinfo=None)
    except (ValueError, OverflowError):
        raise exception.BadRequest(
            reason=f"'{name}' must be an ISO 8601 time such as 2026-01-31T12:00:00Z, not {raw!r}."
        ) from None
    return value


def _time_filter(name: str, raw: str) -> tuple[str, str, datetime.datetime]:
    op, sep, rest = raw.partition(":")
    if not sep or op not in _OPERATORS:
        # No operator: an exact match, as Glance does.
        return name, "eq", _timestamp(name, raw)
    return name, op, _timestamp(name, rest)


def _in_values(name: str, raw: str) -> list[str]:
    if not raw.startswith("in:"):
        return [raw]
    values = []
    for part in raw[3:].split(","):
        part = part.strip()
        if len(part) >= 2 and part[0] == part[-1] == '"':
            part = part[1:-1]
        if part:
            values.append(part)
    if not values:
        raise exception.BadRequest(reason=f"'{name}=in:' needs at least one value.")
    return values


def _sort(params: Mapping[str, Any]) -> list[tuple[str, str]]:
    sort = _one(params, "sort")
    keys = _many(params, "sort_key")
    dirs = _many(params, "sort_dir")
    pairs: list[tuple[str, str]] = []
    if sort is not None:
        if keys or dirs:
            raise exception.BadRequest(
                reason="Use either 'sort' or 'sort_key'/'sort_dir', not both."
            )
        for item in sort.split(","):
            key, _, direction = item.strip().partition(":")
            pairs.append((key.strip(), direction.strip() or "desc"))
    else:
        if len(dirs) > 1 and len(dirs) != len(keys):
            raise exception.BadRequest(
                reason="Give one 'sort_dir' for all sort keys or one for each 'sort_key'."
            )
        for index, key in enumerate(keys):
            direction = dirs[index] if len(dirs) > 1 else (dirs[0] if dirs else "desc")
            pairs.append((key, direction))
        if not keys and dirs:
            pairs.append(("created_at", dirs[0]))
    if not pairs:
        pairs = [("created_at", "desc")]
    for key, direction in pairs:
        if key not in SORT_KEYS:
            raise exception.BadRequest(
                reason=f"Invalid sort key {key!r}; use one of {', '.join(SORT_KEYS)}."
            )
        if direction not in ("asc", "desc"):
            raise exception.BadRequest(
                reason=f"Invalid sort direction {direction!r}; use asc or desc."
            )
    if len({key for key, _ in pairs}) != len(pairs):
        raise exception.BadRequest(reason="A sort key may appear only once.")
    if pairs[-1][0] != "id":
        # The id makes the order total, so markers are unambiguous.
        pairs.append(("id", pairs[-1][1]))
    return pairs


def parse(params: Mapping[str, Any], *, default_limit: int, max_limit: int) -> ImageQuery:
    """Return the :class:`ImageQuery` of a request's query parameters.

    :param params: name to value, or to a list of values for repeated names.
    :raises BadRequest: a parameter has an invalid value.
    """
    raw_limit = _one(params, "limit")
    limit = default_limit if raw_limit is None else _int("limit", raw_limit)
    query = ImageQuery(limit=min(limit, max_limit), marker=_one(params, "marker"))
    query.sort = _sort(params)

    query.visibility = _choice(params, "visibility", (*schema.VISIBILITIES, "all"))
    query.member_status = (
        _choice(params, "member_status", (*schema.MEMBER_STATUSES, "all")) or query.member_status
    )

    for name in _IN_FIELDS:
        raw = _one(params, name)
        if raw is not None:
            query.equals[name] = _in_values(name, raw)
    owner = _one(params, "owner")
    if owner is not None:
        query.equals["owner"] = [owner]
    status = query.equals.get("status")
    if status is not None:
        bad = [s for s in status if s not in schema.STATUSES]
        if bad:
            raise exception.BadRequest(reason=f"Invalid status {bad[0]!r}.")

    for name, column, op in (("size_min", "size", "gte"), ("size_max", "size", "lte")):
        raw = _one(params, name)
        if raw is not None:
            query.ranges.append((column, op, _int(name, raw)))
    for name in ("created_at", "updated_at"):
        raw = _one(params, name)
        if raw is not None:
            query.ranges.append(_time_filter(name, raw))

    query.tags = _many(params, "tag")
    raw = _one(params, "protected")
    if raw is not None:
        query.protected = _bool("protected", raw)
    raw = _one(params, "os_hidden")
    if raw is not None:
        query.os_hidden = _bool("os_hidden", raw)
    for name in params:
        spec = schema.BASE_PROPERTIES.get(name)
        if name not in _NOT_PROPERTIES and (spec is None or spec.get("is_base") is False):
            value = _one(params, name)
            if value is not None:
                query.properties[name] = value
    return query
