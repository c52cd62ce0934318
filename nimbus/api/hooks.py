"""``@falcon.before`` hooks: per-route content types and JSON Schema validation.

Use them on responders::

    @falcon.before(hooks.validate(USER_CREATE, key="user"))
    def on_post(self, req, resp): ...

The JSON body itself is read by :class:`nimbus.api.middleware.BodyMiddleware`,
bounded by the resource's ``max_body_size`` and accepted in the media types
its API declares (``media_types``); :func:`validate` then checks it and
leaves it in ``req.context.body``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import falcon

from nimbus import exception
from nimbus.common.validation import validate as validate_value

__all__ = ["content_type", "media_type", "validate"]

Hook = Callable[[falcon.Request, falcon.Response, Any, dict[str, Any]], None]


def media_type(req: falcon.Request, default: str = "application/json") -> str:
    """Return the request's media type, lower-case, without parameters."""
    return (req.content_type or default).split(";")[0].strip().lower()


def content_type(
    *types: str, default: str = "application/json", accept_patch: bool = False
) -> Hook:
    """Return a hook refusing (415) a body in any media type but *types*.

    :param default: the type assumed when the request names none.
    :param accept_patch: name *types* in an ``Accept-Patch`` header of the 415.
    """
    allowed = ", ".join(types)

    def hook(req: falcon.Request, resp: falcon.Response, resource: Any, params: dict) -> None:
        given = media_type(req, default)
        if given not in types:
            raise falcon.HTTPUnsupportedMediaType(
                description=f"Unsupported Content-Type {given!r}: send {allowed}.",
                headers={"Accept-Patch": allowed} if accept_patch else None,
            )

    return hook


def validate(
    schema: dict[str, Any],
    key: str | None = None,
    *,
    object_only: bool = True,
    root: str = "body",
) -> Hook:
    """Return a hook validating the JSON body against *schema*.

    :param key: the body's one top-level key (``{"user": {...}}``), whose
        value is validated; ``None`` validates the whole document.
    :param object_only: the document must be a JSON object.
    :param root: the name errors give the whole document (when *key* is ``None``).
    :raises ValidationError: from the hook, when the body does not match.
    """

    def hook(req: falcon.Request, resp: falcon.Response, resource: Any, params: dict) -> None:
        document = req.context.get("json")
        if key is None:
            if object_only and not isinstance(document, dict):
                raise exception.BadRequest(reason="The request body must be a JSON object.")
            validate_value(schema, document, root)
        else:
            if not isinstance(document, dict) or key not in document:
                raise exception.ValidationError(field=key, reason=f"'{key}' is a required property")
            if not isinstance(document[key], dict):
                raise exception.ValidationError(field=key, reason="must be an object")
            validate_value(schema, document[key], key)
        req.context.body = document

    return hook
