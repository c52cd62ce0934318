"""Compose Falcon apps from service APIs: middleware, routes and error handlers.

Each service contributes a :class:`ServiceAPI`: its route table, its error
body shape and which of its routes need no token.  In the all-in-one layout
every service answers under its own path prefix on one port
(``/identity/v3``, ...); a per-service app can also serve it at the root.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import falcon

from nimbus.api import errors, middleware

__all__ = ["Links", "ServiceAPI", "create_app"]


@dataclasses.dataclass(frozen=True)
class Links:
    """Builds absolute URLs for one mounted service.

    :param public_endpoint: the configured base URL, or ``None`` to use the
        one the request came in on.
    :param mount: the service's path prefix (``/identity`` or ``""``).
    """

    public_endpoint: str | None
    mount: str

    def base(self, req: falcon.Request) -> str:
        """Return the service's root URL as seen by this request's client."""
        return (self.public_endpoint or req.prefix).rstrip("/") + self.mount

    def url(self, req: falcon.Request, path: str) -> str:
        """Return the absolute URL of *path* (relative to the service root)."""
        return self.base(req) + path


@dataclasses.dataclass(frozen=True)
class ServiceAPI:
    """One service's contribution to an app.

    :param name: the path prefix in the all-in-one layout (``identity``).
    :param error_format: the service's error body shape.
    :param routes: builds the route table (template relative to the service
        root, resource) given the service's :class:`Links`.
    :param is_public: tells whether (method, path relative to the service
        root) needs no token.
    :param strip_trailing_slash: route ``/v3/users/`` as ``/v3/users``, as
        Keystone does (its ``URLNormalizingMiddleware``); ``False`` for an
        API whose routes match exactly, as Glance's do, so that a path with
        a trailing slash is not found.  The service's root answers with or
        without one either way.

    What a request body may be (JSON media types, streamed data, size) is
    declared by the resources themselves: see
    :class:`~nimbus.api.middleware.BodyMiddleware`.
    """

    name: str
    error_format: errors.ErrorFormat
    routes: Callable[[Links], Sequence[tuple[str, Any]]]
    is_public: Callable[[str, str], bool]
    strip_trailing_slash: bool = True
    #: Falcon middleware of this API alone (``process_request`` and
    #: ``process_response``), run for the requests under its prefix after
    #: the app's own: microversion negotiation, say.
    middleware: Sequence[Any] = ()


class _PerService:
    """Runs each API's own middleware for the requests that API owns."""

    def __init__(self, owner: Callable[[str], tuple[ServiceAPI, str] | None]) -> None:
        self.owner = owner

    def _middleware(self, req: falcon.Request) -> Sequence[Any]:
        found = self.owner(req.path)
        return found[0].middleware if found else ()

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        for component in self._middleware(req):
            if hasattr(component, "process_request"):
                component.process_request(req, resp)

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: Any, req_succeeded: bool
    ) -> None:
        for component in reversed(self._middleware(req)):
            if hasattr(component, "process_response"):
                component.process_response(req, resp, resource, req_succeeded)


class _Index:
    """Lists the services this app serves."""

    def __init__(self, links: list[tuple[str, Links]]) -> None:
        self.links = links

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"services": [{"name": n, "url": ln.base(req)} for n, ln in self.links]}


def create_app(
    apis: Sequence[ServiceAPI],
    *,
    validator: middleware.TokenValidator,
    auth_uri: str,
    max_body_size: int,
    public_endpoint: str | None = None,
    service_endpoints: Mapping[str, str] | None = None,
    mounted: bool = True,
) -> falcon.App:
    """Return a WSGI app serving *apis*.

    :param validator: validates tokens (the identity service).
    :param auth_uri: the identity endpoint named in 401 challenges.
    :param max_body_size: the largest JSON body accepted.
    :param public_endpoint: base URL for links; the request's by default.
    :param service_endpoints: the public root URL of a service, by name,
        for links to a service that clients reach elsewhere than here.
    :param mounted: serve each API under ``/<name>`` (the all-in-one
        layout); with one API and ``mounted=False`` it is served at ``/``.
    """
    if not mounted and len(apis) != 1:
        raise ValueError("only a single service can be served unmounted")
    mounts = [(api, f"/{api.name}" if mounted else "") for api in apis]

    def owner(path: str) -> tuple[ServiceAPI, str] | None:
        for api, mount in mounts:
            if not mount:
                return api, path
            if path == mount or path.startswith(mount + "/"):
                return api, path[len(mount) :] or "/"
        return None

    def is_public(method: str, path: str) -> bool:
        found = owner(path)
        if found is None:
            return True
        return found[0].is_public(method, found[1])

    def error_format(path: str) -> errors.ErrorFormat:
        found = owner(path)
        return found[0].error_format if found else errors.FORMATS["keystone"]

    def normalize(path: str) -> str | None:
        found = owner(path)
        if found is None or not path.endswith("/") or path == "/":
            return path
        api, relative = found
        if relative == "/":
            # The service's root: ``/image/`` is ``/image``.
            return path.rstrip("/") or "/"
        return path.rstrip("/") if api.strip_trailing_slash else None

    app = falcon.App(
        middleware=[
            middleware.RequestIdMiddleware(),
            middleware.PathMiddleware(normalize),
            middleware.BodyMiddleware(max_body_size),
            middleware.AuthMiddleware(validator, is_public, auth_uri),
            _PerService(owner),
        ],
    )
    # Each API says whether it drops a trailing slash (PathMiddleware).
    app.req_options.strip_url_path_trailing_slash = False
    app.req_options.auto_parse_qs_csv = False
    app.req_options.keep_blank_qs_values = True
    app.resp_options.secure_cookies_by_default = True
    errors.install(app, error_format)
    index = []
    for api, mount in mounts:
        configured = (service_endpoints or {}).get(api.name)
        links = Links(configured, "") if configured else Links(public_endpoint, mount)
        index.append((api.name, links))
        for template, resource in api.routes(links):
            route = (mount + template) if template != "/" or not mount else mount
            app.add_route(route or "/", resource)
    if mounted:
        app.add_route("/", _Index(index))
    return app
