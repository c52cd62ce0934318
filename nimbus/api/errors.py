"""Map nimbus exceptions to HTTP status codes and to each API's error body.

One table maps exception classes to status codes.  Each service picks the
body shape its OpenStack counterpart uses, through an :class:`ErrorFormat`:
Keystone ``{"error": {"code", "title", "message"}}``, Nova/Cinder
``{"<fault>": {"code", "message"}}``, Neutron ``{"NeutronError": {...}}`` and
Glance ``{"message", "code", "title"}``.  Unexpected exceptions become a 500
in the same shape, with the traceback in the log and never in the body.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import falcon

from nimbus import exception
from nimbus.common.logsafe import printable

__all__ = [
    "ErrorFormat",
    "FORMATS",
    "install",
    "status_for",
]

LOG = logging.getLogger(__name__)

#: Most specific first: the first class an exception is an instance of wins.
_STATUS: list[tuple[type[exception.NimbusException], int]] = [
    (exception.PayloadTooLarge, 413),
    (exception.OverLimit, 413),
    (exception.RangeNotSatisfiable, 416),
    (exception.RequestTimeout, 408),
    (exception.Invalid, 400),
    (exception.Unauthorized, 401),
    (exception.Forbidden, 403),
    (exception.NotFound, 404),
    (exception.Conflict, 409),
    (exception.OperationNotSupported, 501),
]


def status_for(ex: BaseException) -> int:
    """Return the HTTP status code for a nimbus exception (500 for anything else)."""
    for cls, code in _STATUS:
        if isinstance(ex, cls):
            return code
    return 500


def _title(code: int) -> str:
    # The same phrase as the status line Falcon sends.
    status = falcon.code_to_http_status(code)
    return status.split(" ", 1)[1] if " " in status else "Error"


_NOVA_FAULTS = {
    400: "badRequest",
    401: "unauthorized",
    403: "forbidden",
    404: "itemNotFound",
    405: "badMethod",
    406: "notAcceptable",
    409: "conflictingRequest",
    413: "overLimit",
    415: "badMediaType",
    501: "notImplemented",
}


def _keystone(code: int, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "title": _title(code), "message": message}}


def _nova(code: int, message: str) -> dict[str, Any]:
    fault = _NOVA_FAULTS.get(code, "computeFault" if code >= 500 else "badRequest")
    return {fault: {"code": code, "message": message}}


def _neutron(code: int, message: str) -> dict[str, Any]:
    kind = _title(code).replace(" ", "")
    return {"NeutronError": {"type": kind, "message": message, "detail": ""}}


def _glance(code: int, message: str) -> dict[str, Any]:
    return {"message": message, "code": f"{code} {_title(code)}", "title": _title(code)}


class ErrorFormat:
    """How one API renders an error body."""

    def __init__(self, name: str, render: Callable[[int, str], dict[str, Any]]) -> None:
        self.name = name
        self.render = render

    def body(self, code: int, message: str) -> str:
        """Return the JSON error body for *code* with *message*."""
        return json.dumps(self.render(code, message))


FORMATS: dict[str, ErrorFormat] = {
    "keystone": ErrorFormat("keystone", _keystone),
    "nova": ErrorFormat("nova", _nova),
    "cinder": ErrorFormat("cinder", _nova),
    "neutron": ErrorFormat("neutron", _neutron),
    "glance": ErrorFormat("glance", _glance),
}


def _format_for(req: falcon.Request, resolve: Callable[[str], ErrorFormat]) -> ErrorFormat:
    return resolve(req.path)


def _write(resp: falcon.Response, fmt: ErrorFormat, code: int, message: str) -> None:
    resp.status = code
    resp.content_type = falcon.MEDIA_JSON
    resp.text = fmt.body(code, message)


def install(app: falcon.App, resolve: Callable[[str], ErrorFormat]) -> None:
    """Register nimbus's error handlers on *app*.

    :param resolve: returns the error format for a request path, so that one
        app serving several APIs answers each in its own shape.
    """

    def nimbus_error(req: falcon.Request, resp: falcon.Response, ex: Exception, params) -> None:
        code = status_for(ex)
        if code >= 500:
            LOG.error(
                "Request %s %s failed: %s",
                printable(req.method),
                printable(req.path),
                printable(ex),
            )
        _write(resp, _format_for(req, resolve), code, str(ex))
        if code == 401:
            challenge = req.context.get("auth_challenge")
            if challenge:
                resp.set_header("WWW-Authenticate", challenge)

    def http_error(req: falcon.Request, resp: falcon.Response, ex: Exception, params) -> None:
        assert isinstance(ex, falcon.HTTPError)
        code = ex.status_code
        message = ex.description or ex.title or _title(code)
        _write(resp, _format_for(req, resolve), code, message)
        for name, value in (ex.headers or {}).items():
            if name.lower() != "content-type":
                resp.set_header(name, value)

    def unexpected(req: falcon.Request, resp: falcon.Response, ex: Exception, params) -> None:
        LOG.exception("Unexpected error on %s %s", printable(req.method), printable(req.path))
        _write(
            resp,
            _format_for(req, resolve),
            500,
            "An unexpected error prevented the server from fulfilling your request.",
        )

    # Falcon picks the handler registered for the most specific class.
    app.add_error_handler(Exception, unexpected)
    app.add_error_handler(falcon.HTTPError, http_error)
    app.add_error_handler(exception.NimbusException, nimbus_error)
