"""Cross-cutting WSGI work: request ids, bounded JSON bodies, token authentication."""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Callable
from typing import Any, Protocol

import falcon

from nimbus import exception
from nimbus.api import hooks
from nimbus.common.logsafe import printable
from nimbus.context import RequestContext, generate_request_id

__all__ = [
    "AuthMiddleware",
    "BodyMiddleware",
    "PathMiddleware",
    "RequestIdMiddleware",
    "TokenValidator",
]

LOG = logging.getLogger(__name__)

_MAX_DEPTH = 32
_REQUEST_ID = re.compile(r"req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class PathMiddleware:
    """Rewrite the request's path before it is routed, or refuse it.

    :param normalize: returns the path to route a request path as, or
        ``None`` for one that no route may match (the app's trailing-slash
        rules, one per API: Falcon would take ``/v2/images/`` for an image
        whose id is empty).
    """

    def __init__(self, normalize: Callable[[str], str | None]) -> None:
        self.normalize = normalize

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        path = self.normalize(req.path)
        if path is None:
            raise falcon.HTTPRouteNotFound()
        # Falcon routes on req.path: setting it here re-routes the request.
        req.path = path


class RequestIdMiddleware:
    """Give every request an id and echo it in ``x-openstack-request-id``.

    A caller's ``X-OpenStack-Request-ID`` of the right form is kept as the
    global request id, so a chain of services can be followed in the logs.
    """

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.request_id = generate_request_id()
        inbound = req.get_header("X-OpenStack-Request-ID")
        req.context.global_request_id = (
            inbound if inbound and _REQUEST_ID.fullmatch(inbound) else None
        )

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: Any, req_succeeded: bool
    ) -> None:
        request_id = req.context.get("request_id")
        if request_id:
            resp.set_header("x-openstack-request-id", request_id)
        if not LOG.isEnabledFor(logging.INFO):
            # nimbus up leaves request lines out unless asked (``[api] log_requests``).
            return
        ctx = req.context.get("nimbus")
        who = ctx.to_log_values() if ctx is not None else {}
        # The path only: query strings may carry names a caller considers private.
        LOG.info(
            "%s %s status: %s request_id: %s user_id: %s project_id: %s audit_id: %s",
            printable(req.method),
            printable(req.path),
            resp.status,
            request_id,
            who.get("user_id"),
            who.get("project_id"),
            who.get("audit_id"),
        )


def _read_bounded(req: falcon.Request, limit: int) -> bytes:
    length = req.content_length
    if length is not None and length > limit:
        raise exception.PayloadTooLarge(limit=limit)
    try:
        data = req.bounded_stream.read(limit + 1)
    except TimeoutError as ex:
        # The server's read timeout ([api] body_timeout): the client stalled.
        raise exception.RequestTimeout() from ex
    if len(data) > limit:
        raise exception.PayloadTooLarge(limit=limit)
    return data


def _refuse_constant(name: str) -> None:
    raise exception.BadRequest(reason=f"{name} is not a JSON number.")


def _finite_float(text: str) -> float:
    # 1e999 is valid JSON but overflows to infinity, which JSON cannot give back.
    value = float(text)
    if not math.isfinite(value):
        raise exception.BadRequest(reason=f"{text[:40]} is not a JSON number nimbus can store.")
    return value


def _check_text(text: str) -> None:
    # No database stores NUL in text (PostgreSQL refuses it), and a lone
    # surrogate cannot be encoded at all: refuse both up front.
    if "\x00" in text:
        raise exception.BadRequest(reason="NUL characters are not allowed in request bodies.")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as ex:
        raise exception.BadRequest(reason="The request body holds invalid Unicode.") from ex


def _check_document(document: Any) -> None:
    """Refuse bodies nested deeper than _MAX_DEPTH or holding unstorable text."""
    stack = [(document, 0)]
    while stack:
        value, depth = stack.pop()
        if depth > _MAX_DEPTH:
            raise exception.BadRequest(reason="The request body is nested too deeply.")
        if isinstance(value, str):
            _check_text(value)
        elif isinstance(value, dict):
            for key, item in value.items():
                _check_text(key)
                stack.append((item, depth + 1))
        elif isinstance(value, list):
            stack.extend((item, depth + 1) for item in value)


class BodyMiddleware:
    """Read and parse JSON request bodies, refusing oversized ones with 413.

    The parsed document is ``req.context.json`` (``None`` for an empty body).
    What a body may be is the routed resource's to say, through attributes
    its API's resource base sets:

    * ``streamed``: the body is data, not JSON, and is left unread (image
      uploads);
    * ``media_types``: the media types taken as JSON (``application/json``
      and any ``+json`` type by default; Glance adds its JSON-patch types);
    * ``accept_patch``: the PATCH types named in a 415's ``Accept-Patch``;
    * ``max_body_size``: a limit of its own instead of *max_size*.

    :param max_size: the largest body accepted, in bytes.
    """

    DEFAULT_MEDIA_TYPES: tuple[str, ...] = ("application/json",)

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.json = None
        if "\x00" in req.path or "%00" in req.query_string:
            raise exception.BadRequest(reason="NUL characters are not allowed in URLs.")

    def process_resource(
        self, req: falcon.Request, resp: falcon.Response, resource: Any, params: dict
    ) -> None:
        if resource is None or req.method in ("GET", "HEAD", "DELETE", "OPTIONS"):
            return
        if getattr(resource, "streamed", False):
            return
        data = _read_bounded(req, getattr(resource, "max_body_size", None) or self.max_size)
        if not data.strip():
            return
        types = getattr(resource, "media_types", self.DEFAULT_MEDIA_TYPES)
        content_type = hooks.media_type(req)
        if content_type not in types and not content_type.endswith("+json"):
            patch_types = getattr(resource, "accept_patch", None) if req.method == "PATCH" else None
            raise falcon.HTTPUnsupportedMediaType(
                description=f"Content type {content_type!r} is not supported; send "
                f"{patch_types or 'JSON'}.",
                headers={"Accept-Patch": patch_types} if patch_types else None,
            )
        try:
            document = json.loads(data, parse_constant=_refuse_constant, parse_float=_finite_float)
        except (UnicodeDecodeError, json.JSONDecodeError) as ex:
            raise exception.BadRequest(reason=f"Malformed JSON in request body: {ex}") from ex
        except (RecursionError, ValueError) as ex:
            # Absurd nesting, or an integer too long for Python to convert.
            raise exception.BadRequest(
                reason="The request body is not JSON nimbus accepts."
            ) from ex
        _check_document(document)
        req.context.json = document


class TokenValidator(Protocol):
    """What the auth middleware needs from the identity service."""

    def context_for_token(self, token: str) -> RequestContext:
        """Return the context of a valid token, or raise ``Unauthorized``."""


class AuthMiddleware:
    """Require a valid ``X-Auth-Token`` on every request that is not public.

    Sets ``req.context.nimbus`` to the caller's :class:`RequestContext` (an
    anonymous one on public routes).  A missing, malformed, expired or
    revoked token gets 401 with ``WWW-Authenticate: Keystone uri="..."``.

    :param validator: checks tokens (the identity service).
    :param is_public: tells whether a (method, path) needs no token.
    :param auth_uri: the identity endpoint advertised in the challenge.
    """

    def __init__(
        self,
        validator: TokenValidator,
        is_public: Callable[[str, str], bool],
        auth_uri: str,
    ) -> None:
        self.validator = validator
        self.is_public = is_public
        self.challenge = f'Keystone uri="{auth_uri}"'

    def process_resource(
        self, req: falcon.Request, resp: falcon.Response, resource: Any, params: dict
    ) -> None:
        req.context.auth_challenge = self.challenge
        token = req.get_header("X-Auth-Token")
        anonymous = RequestContext(
            request_id=req.context.request_id,
            global_request_id=req.context.get("global_request_id"),
        )
        if resource is None or self.is_public(req.method, req.path):
            ctx = anonymous
            if token:
                # Public routes still learn who calls when a valid token is sent.
                try:
                    ctx = self._context(req, token)
                except exception.Unauthorized:
                    ctx = anonymous
            req.context.nimbus = ctx
            return
        if not token:
            raise exception.Unauthorized()
        req.context.nimbus = self._context(req, token)

    def _context(self, req: falcon.Request, token: str) -> RequestContext:
        ctx = self.validator.context_for_token(token)
        ctx.request_id = req.context.request_id
        ctx.global_request_id = req.context.get("global_request_id")
        return ctx
