"""gunicorn targets: app factories that read the configuration and build the services.

Use them with gunicorn's factory syntax::

    gunicorn 'nimbus.wsgi:all_services()'     # every API on one port, /identity/v3 ...
    gunicorn 'nimbus.wsgi:service("image")'   # one service's API alone, at the root
    gunicorn 'nimbus.wsgi:image()'            # the same, by the service's name

Every installed service descriptor (:mod:`nimbus.descriptor`) has a target
of its name, so ``nimbus.wsgi:identity()`` serves the identity API alone at
``/v3`` and builds nothing else.

The configuration comes from ``NIMBUS_CONFIG_FILE`` (a path, or several
separated by commas) or from the usual places (``/etc/nimbus/nimbus.conf``,
``~/.nimbus/nimbus.conf``).  The schema must already be upgraded
(``nimbus db sync``) and each service set up (``nimbus bootstrap``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable

import falcon
from oslo_config import cfg

from nimbus import descriptor
from nimbus.api import app as app_module
from nimbus.common.changes import Changes
from nimbus.conf import load_config
from nimbus.descriptor import CatalogEntry, Cloud, catalog_entries, public_url, service_url

__all__ = [
    "CatalogEntry",
    "Services",
    "all_services",
    "build_app",
    "build_services",
    "catalog_entries",
    "public_url",
    "service",
]

#: The built collaborators of an app (the name the tests and tools know).
Services = Cloud


def build_services(
    conf: cfg.ConfigOpts, names: Iterable[str] | None = None, *, changes: Changes | None = None
) -> Cloud:
    """Build the services *names* (all installed ones by default) from *conf*.

    :param changes: change stamps shared with the server's other workers.
    """
    return Cloud(conf, names, changes=changes)


def _auth_uri(cloud: Cloud, base: str, served: set[str], mounted: bool) -> str:
    configured = cloud.conf.api.auth_uri
    if configured:
        return str(configured).rstrip("/")
    for item in cloud.descriptors:
        if item.name in cloud.conf.api.service_endpoints:
            root = service_url(cloud.conf, item.name)
        else:
            root = f"{base}/{item.name}" if mounted else base
        uri = item.auth_uri(cloud, root, served=item.name in served)
        if uri:
            return uri
    return base


def build_app(cloud: Cloud, *, mounted: bool = True, only: str | None = None) -> falcon.App:
    """Compose the WSGI app of the services built in *cloud*.

    :param mounted: every service under its prefix (``/identity/v3``).
    :param only: serve this one service (by name) at the root.
    """
    served = [d for d in cloud.descriptors if only is None or d.name == only]
    apis = [api for api in (d.api(cloud) for d in served) if api is not None]
    base = public_url(cloud.conf)
    return app_module.create_app(
        apis,
        validator=cloud.token_validator(),
        auth_uri=_auth_uri(cloud, base, {d.name for d in served}, mounted),
        max_body_size=cloud.conf.api.max_request_body_size,
        public_endpoint=cloud.conf.api.public_endpoint,
        service_endpoints=cloud.conf.api.service_endpoints,
        mounted=mounted,
    )


def _conf() -> cfg.ConfigOpts:
    files = os.environ.get("NIMBUS_CONFIG_FILE")
    return load_config([], default_config_files=files.split(",") if files else None)


def _serve(cloud: Cloud, *, mounted: bool = True, only: str | None = None) -> falcon.App:
    # gunicorn calls the target in each worker: each runs the periodic tasks
    # (start-up recovery first) of the services it builds.
    app = build_app(cloud, mounted=mounted, only=only)
    cloud.start_periodic(startup=True)
    return app


def all_services() -> falcon.App:
    """gunicorn target: every service on one port, each under its prefix."""
    return _serve(build_services(_conf()))


def service(name: str) -> falcon.App:
    """gunicorn target: the API of the service *name* alone, at the root.

    :raises PluginNotFound: no service of that name is installed.
    """
    return _serve(build_services(_conf(), [name]), mounted=False, only=name)


def __getattr__(name: str) -> Callable[[], falcon.App]:
    # ``nimbus.wsgi:image()``: one target per installed service descriptor.
    if name.startswith("_") or name not in {d.name for d in descriptor.descriptors()}:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

    def target() -> falcon.App:
        return service(name)

    target.__name__ = name
    target.__doc__ = f"gunicorn target: the {name} API alone, at the root."
    return target
