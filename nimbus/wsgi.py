"""gunicorn targets: app factories that read the configuration and build the services.

Use them with gunicorn's factory syntax::

    gunicorn 'nimbus.wsgi:all_services()'     # every API on one port, /identity/v3 ...
    gunicorn 'nimbus.wsgi:identity()'         # the identity API alone, at /v3
    gunicorn 'nimbus.wsgi:image()'            # the image API alone, at /v2

The configuration comes from ``NIMBUS_CONFIG_FILE`` (a path, or several
separated by commas) or from the usual places (``/etc/nimbus/nimbus.conf``,
``~/.nimbus/nimbus.conf``).  The schema must already be upgraded
(``nimbus db upgrade``) and the key repository set up (``nimbus fernet setup``).
"""

from __future__ import annotations

import dataclasses
import os

import falcon
from oslo_config import cfg

from nimbus import messaging, registry
from nimbus.api import app as app_module
from nimbus.api.identity import identity_api
from nimbus.api.image import image_api
from nimbus.api.policy import Enforcer
from nimbus.conf import load_config
from nimbus.db import Database
from nimbus.drivers.image import ImageStore
from nimbus.identity.bootstrap import CatalogEntry
from nimbus.identity.service import IdentityService
from nimbus.image import ImageData, ImageService

__all__ = [
    "Services",
    "all_services",
    "build_app",
    "build_services",
    "catalog_entries",
    "identity",
    "image",
    "public_url",
]


@dataclasses.dataclass
class Services:
    """The collaborators every API app is composed from."""

    conf: cfg.ConfigOpts
    database: Database
    identity: IdentityService
    enforcer: Enforcer
    image: ImageService
    image_data: ImageData


def public_url(conf: cfg.ConfigOpts) -> str:
    """Return the base URL clients reach this cloud at."""
    if conf.api.public_endpoint:
        return conf.api.public_endpoint.rstrip("/")
    host = conf.api.bind_host
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{conf.api.bind_port}"


def catalog_entries(conf: cfg.ConfigOpts) -> list[CatalogEntry]:
    """Return the catalog entries of every service this nimbus offers (all-in-one layout)."""
    base = public_url(conf)
    return [
        CatalogEntry(
            "identity", "keystone", f"{base}/identity/v3", "nimbus identity (Keystone v3)"
        ),
        # Unversioned: the client discovers v2 at the root.
        CatalogEntry("image", "glance", f"{base}/image", "nimbus image service (Glance v2)"),
    ]


def build_services(conf: cfg.ConfigOpts) -> Services:
    """Connect to the database and build every service from *conf*."""
    database = Database(conf)
    database.wait_for_connection()
    enforcer = Enforcer(conf)
    identity_service = IdentityService(conf, database, enforcer=enforcer)
    store = registry.load_driver("nimbus.image.stores", conf.image.store, conf, expected=ImageStore)
    notifier = messaging.Notifier(messaging.get_transport(conf), f"image.{conf.host}")
    image_service = ImageService(conf, database, store, enforcer, notifier=notifier)
    return Services(
        conf, database, identity_service, enforcer, image_service, ImageData(image_service)
    )


def build_app(services: Services, *, mounted: bool = True, only: str | None = None) -> falcon.App:
    """Compose the WSGI app.

    :param mounted: every service under its prefix (``/identity/v3``).
    :param only: serve this one service (by name) at the root.
    """
    apis = [
        identity_api(services.identity, services.enforcer),
        image_api(services.image, services.image_data),
    ]
    if only is not None:
        apis = [api for api in apis if api.name == only]
    base = public_url(services.conf)
    return app_module.create_app(
        apis,
        validator=services.identity,
        auth_uri=f"{base}/identity/v3" if mounted else f"{base}/v3",
        max_body_size=services.conf.api.max_request_body_size,
        public_endpoint=services.conf.api.public_endpoint,
        mounted=mounted,
    )


def _conf() -> cfg.ConfigOpts:
    files = os.environ.get("NIMBUS_CONFIG_FILE")
    return load_config([], default_config_files=files.split(",") if files else None)


def all_services() -> falcon.App:
    """gunicorn target: every service on one port, each under its prefix."""
    return build_app(build_services(_conf()))


def identity() -> falcon.App:
    """gunicorn target: the identity API alone, at the root (``/v3``)."""
    return build_app(build_services(_conf()), mounted=False, only="identity")


def image() -> falcon.App:
    """gunicorn target: the image API alone, at the root (``/v2``)."""
    return build_app(build_services(_conf()), mounted=False, only="image")
