"""Map nimbus exceptions to HTTP status codes and to each API's error body.

One table maps exception classes to status codes.  Each service picks the
body shape its OpenStack counterpart uses, through an :class:`ErrorFormat`:
Keystone ``{"error": {"code", "title", "message"}}``, Nova/Cinder
``{"<fault>": {"code", "message"}}`` and Neutron ``{"NeutronError": {...}}``,
all JSON; Glance answers as webob does, in the media type the request's
``Accept`` prefers (:class:`WebobErrors`).  Unexpected exceptions become a
500 in the same shape, with the traceback in the log and never in the body.
"""

from __future__ import annotations

import html
import json
import logging
from collections.abc import Callable, Sequence
from typing import Any

import falcon

from nimbus import exception
from nimbus.common.logsafe import printable

__all__ = [
    "ErrorFormat",
    "FORMATS",
    "WebobErrors",
    "install",
    "preferred_type",
    "status_for",
]

LOG = logging.getLogger(__name__)

#: Most specific first: the first class an exception is an instance of wins.
_STATUS: list[tuple[type[exception.NimbusException], int]] = [
    (exception.PayloadTooLarge, 413),
    (exception.OverLimit, 413),
    (exception.RangeNotSatisfiable, 416),
    (exception.RequestTimeout, 408),
    (exception.VersionNotAcceptable, 406),
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
    # webob's json_formatter (webob/exc.py, WSGIHTTPException.json_formatter).
    return {"message": message, "code": f"{code} {_title(code)}", "title": _title(code)}


class ErrorFormat:
    """How one API renders an error answer: a JSON body in its shape."""

    def __init__(self, name: str, render: Callable[[int, str], dict[str, Any]]) -> None:
        self.name = name
        self.render = render

    def body(self, code: int, message: str) -> str:
        """Return the JSON error body for *code* with *message*."""
        return json.dumps(self.render(code, message))

    def default_message(self, req: falcon.Request, code: int) -> str | None:
        """Return the message of an error raised without one (a route not found ...)."""
        return None

    def write(self, req: falcon.Request, resp: falcon.Response, code: int, message: str) -> None:
        """Write the answer to *req* for error *code* with *message* on *resp*."""
        resp.status = code
        resp.content_type = falcon.MEDIA_JSON
        resp.text = self.body(code, message)


def _quality(accept: str, offer: str) -> float:
    """Return the quality *accept* gives *offer*: that of its most specific matching range."""
    kind = offer.partition("/")[0]
    best, quality = -1, 0.0
    for item in accept.split(","):
        media, *params = item.split(";")
        media = media.strip().lower()
        if media == offer:
            specificity = 2
        elif media == f"{kind}/*":
            specificity = 1
        elif media == "*/*":
            specificity = 0
        else:
            continue
        value = 1.0
        for param in params:
            name, _, raw = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    value = float(raw.strip())
                except ValueError:
                    value = 0.0
        if specificity > best:
            best, quality = specificity, value
    return quality


def preferred_type(accept: str, offers: Sequence[str]) -> str | None:
    """Return the offer *accept* prefers, the first of equals, or ``None`` for none.

    As webob's ``acceptable_offers``: each offer takes the quality of the
    most specific media range matching it, and ``q=0`` refuses it.
    """
    ranked = [(_quality(accept, offer), -index, offer) for index, offer in enumerate(offers)]
    quality, _, offer = max(ranked)
    return offer if quality > 0 else None


_HTML_PAGE = """\
<html>
 <head>
  <title>{status}</title>
 </head>
 <body>
  <h1>{status}</h1>
  {message}<br /><br />



 </body>
</html>"""

#: webob's explanations, for the errors Falcon raises without a description.
_EXPLANATIONS = {
    404: "The resource could not be found.",
    405: "The method {method} is not allowed for this resource.",
}


class WebobErrors(ErrorFormat):
    """Glance's errors: webob's, in the media type the request's ``Accept`` prefers.

    webob (``WSGIHTTPException.generate_response``) offers ``text/html`` then
    ``application/json``, the first winning a tie (so ``*/*``, which
    glanceclient sends, gets the HTML page), and answers ``text/plain``
    when the request accepts neither.  A 401 is keystonemiddleware's,
    Keystone's JSON whatever the request accepts, as Glance's comes from
    ``auth_token`` before Glance sees the request.

    Two departures from webob, both so that clients print the message: a
    request without an ``Accept`` (or with an empty one, as openstacksdk
    sends with uploads and patches) gets JSON, where webob answers
    ``text/plain`` and openstacksdk then prints only the reason phrase;
    and the JSON message is the message alone, without the
    ``<br /><br />`` webob's template leaves in it.
    """

    OFFERS = ("text/html", "application/json")

    def default_message(self, req: falcon.Request, code: int) -> str | None:
        explanation = _EXPLANATIONS.get(code)
        return explanation.format(method=printable(req.method)) if explanation else None

    def write(self, req: falcon.Request, resp: falcon.Response, code: int, message: str) -> None:
        resp.status = code
        if code == 401:
            resp.content_type = falcon.MEDIA_JSON
            resp.text = FORMATS["keystone"].body(code, message)
            return
        accept = (req.get_header("Accept") or "").strip()
        chosen = preferred_type(accept, self.OFFERS) if accept else "application/json"
        status = f"{code} {_title(code)}"
        if chosen == "application/json":
            resp.content_type = falcon.MEDIA_JSON
            resp.text = self.body(code, message)
        elif chosen == "text/html":
            resp.content_type = "text/html; charset=UTF-8"
            resp.text = _HTML_PAGE.format(status=status, message=html.escape(message, quote=False))
        else:
            resp.content_type = "text/plain; charset=UTF-8"
            resp.text = f"{status}\n\n{message}\n\n"


FORMATS: dict[str, ErrorFormat] = {
    "keystone": ErrorFormat("keystone", _keystone),
    "nova": ErrorFormat("nova", _nova),
    "cinder": ErrorFormat("cinder", _nova),
    "neutron": ErrorFormat("neutron", _neutron),
    "glance": WebobErrors("glance", _glance),
}


def _format_for(req: falcon.Request, resolve: Callable[[str], ErrorFormat]) -> ErrorFormat:
    return resolve(req.path)


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
        _format_for(req, resolve).write(req, resp, code, str(ex))
        if code == 401:
            challenge = req.context.get("auth_challenge")
            if challenge:
                resp.set_header("WWW-Authenticate", challenge)

    def http_error(req: falcon.Request, resp: falcon.Response, ex: Exception, params) -> None:
        assert isinstance(ex, falcon.HTTPError)
        code = ex.status_code
        fmt = _format_for(req, resolve)
        message = ex.description or fmt.default_message(req, code) or ex.title or _title(code)
        fmt.write(req, resp, code, message)
        for name, value in (ex.headers or {}).items():
            if name.lower() != "content-type":
                resp.set_header(name, value)

    def unexpected(req: falcon.Request, resp: falcon.Response, ex: Exception, params) -> None:
        LOG.exception("Unexpected error on %s %s", printable(req.method), printable(req.path))
        _format_for(req, resolve).write(
            req,
            resp,
            500,
            "An unexpected error prevented the server from fulfilling your request.",
        )

    # Falcon picks the handler registered for the most specific class.
    app.add_error_handler(Exception, unexpected)
    app.add_error_handler(falcon.HTTPError, http_error)
    app.add_error_handler(exception.NimbusException, nimbus_error)
