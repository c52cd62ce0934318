"""Service descriptors: what a service contributes to a nimbus cloud.

A service (identity, image, compute, ...) is a package plus one
:class:`ServiceDescriptor`, registered in the ``nimbus.services``
entry-point namespace.  Everything that composes a cloud iterates over the
installed descriptors and never names a service: the gunicorn targets
(:mod:`nimbus.wsgi`), ``nimbus up``, the option aggregator, the policy list
and the migration environment.  A third party ships a whole service the
same way it ships a driver::

    [options.entry_points]
    nimbus.services =
        telemetry = nimbus_telemetry.descriptor:TelemetryDescriptor

Building is lazy and shared: a :class:`Cloud` holds the configuration and
creates the database, the policy enforcer and the message transport the
first time a service asks for them, and builds the services an app needs
(with what they require) in dependency order.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
from collections.abc import Callable, Iterable, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from oslo_config import cfg

from nimbus import exception

if TYPE_CHECKING:
    from oslo_policy import policy

    from nimbus.api.app import ServiceAPI
    from nimbus.common.changes import Changes
    from nimbus.context import RequestContext
    from nimbus.db import Database
    from nimbus.messaging.base import Transport
    from nimbus.periodic import PeriodicRunner, PeriodicTask
    from nimbus.policy import Enforcer

__all__ = [
    "NAMESPACE",
    "Backend",
    "CatalogEntry",
    "Cloud",
    "ServiceDescriptor",
    "SetupOptions",
    "TokenValidator",
    "descriptors",
    "public_url",
    "service_url",
]

LOG = logging.getLogger(__name__)

#: The entry-point namespace of service descriptors.
NAMESPACE = "nimbus.services"


@dataclasses.dataclass(frozen=True)
class CatalogEntry:
    """A service to advertise in the catalog: its type, name and public URL."""

    type: str
    name: str
    url: str
    description: str = ""


@dataclasses.dataclass(frozen=True)
class SetupOptions:
    """What ``nimbus up`` and ``nimbus bootstrap`` hand every service's set-up.

    :param admin_password: the admin's password (first start), or ``None``.
    :param catalog: the catalog entries of every installed service.
    :param region_id: the region of the catalog endpoints.
    :param embedded: the all-in-one single-process cloud is starting, so
        nothing else can be using the state (transient states left behind
        are dead for sure).
    """

    admin_password: str | None
    catalog: Sequence[CatalogEntry]
    region_id: str
    embedded: bool = False


class TokenValidator(Protocol):
    """What the auth middleware needs from the service that checks tokens."""

    def context_for_token(self, token: str) -> RequestContext:
        """Return the context of a valid token, or raise ``Unauthorized``."""


def public_url(conf: cfg.ConfigOpts) -> str:
    """Return the base URL clients reach this cloud at."""
    if conf.api.public_endpoint:
        return str(conf.api.public_endpoint).rstrip("/")
    host = conf.api.bind_host
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{conf.api.bind_port}"


def service_url(conf: cfg.ConfigOpts, name: str) -> str:
    """Return the public root URL of the service *name*.

    ``[api] service_endpoints`` names it for a service served apart; else it
    is mounted under the cloud's URL (``<public_url>/<name>``).
    """
    configured = conf.api.service_endpoints.get(name)
    if configured:
        return str(configured).rstrip("/")
    return f"{public_url(conf)}/{name}"


class ServiceDescriptor:
    """One service's contribution to a cloud.

    Subclasses set the class attributes and override what they provide;
    every hook has a harmless default, so a descriptor states only what its
    service has.

    ``name`` is the entry-point name and the path prefix in the all-in-one
    layout (``/identity``); ``requires`` names the services this one needs
    built beside it (the image service needs identity to check tokens).
    """

    name: ClassVar[str] = ""
    requires: ClassVar[tuple[str, ...]] = ()
    #: Option modules, each with ``register_opts(conf)`` and ``list_opts()``.
    option_modules: ClassVar[tuple[str, ...]] = ()
    #: The module holding the service's policy defaults (``list_rules()``).
    policy_module: ClassVar[str | None] = None
    #: Packages of alembic migration scripts (one branch each, see
    #: :mod:`nimbus.db.migration`).
    migrations: ClassVar[tuple[str, ...]] = ()

    # -- configuration, policy and schema (no cloud needed) -----------------

    def _option_modules(self) -> list[ModuleType]:
        return [importlib.import_module(name) for name in self.option_modules]

    def register_opts(self, conf: cfg.ConfigOpts) -> None:
        """Register the service's option groups on *conf*."""
        for module in self._option_modules():
            module.register_opts(conf)

    def list_opts(self) -> list[tuple[Any, list[cfg.Opt]]]:
        """Return the service's options, grouped, for the sample generator."""
        result: list[tuple[Any, list[cfg.Opt]]] = []
        for module in self._option_modules():
            result.extend(module.list_opts())
        return result

    def policies(self) -> list[policy.RuleDefault]:
        """Return the service's policy defaults."""
        if self.policy_module is None:
            return []
        rules: list[policy.RuleDefault] = importlib.import_module(self.policy_module).list_rules()
        return rules

    # -- running ------------------------------------------------------------

    def build(self, cloud: Cloud) -> dict[str, Any]:
        """Build the service's objects from *cloud*; return them by name.

        The names become attributes of the cloud (``cloud.image``), so that
        other services, tests and tools can reach them.
        """
        return {}

    def api(self, cloud: Cloud) -> ServiceAPI | None:
        """Return the service's Falcon API, or ``None`` when it has none."""
        return None

    def catalog(self, conf: cfg.ConfigOpts, base_url: str) -> list[CatalogEntry]:
        """Return the catalog entries of the service, mounted under *base_url*."""
        return []

    def token_validator(self, cloud: Cloud) -> TokenValidator | None:
        """Return what validates tokens, when this service is the one that does."""
        return None

    def auth_uri(self, cloud: Cloud, base_url: str, *, served: bool) -> str | None:
        """Return the identity endpoint 401 challenges name, if this service knows it.

        :param served: this app serves the service (at *base_url*).
        """
        return None

    def client_environment(
        self, conf: cfg.ConfigOpts, base_url: str, admin_password: str
    ) -> dict[str, str]:
        """Return ``OS_*`` variables the admin's openrc needs from this service."""
        return {}

    def setup(self, cloud: Cloud, options: SetupOptions) -> object:
        """Create or repair the service's state before the cloud serves (idempotent).

        :returns: something worth telling the operator (printed by
            ``nimbus bootstrap``), or ``None``.
        """
        return None

    def periodic_tasks(self, cloud: Cloud) -> list[PeriodicTask]:
        """Return the service's start-up recovery and interval tasks."""
        return []

    def has_embedded_backend(self, conf: cfg.ConfigOpts) -> bool:
        """Tell whether :meth:`embedded_backend` gives ``nimbus up`` processes to run."""
        return False

    def embedded_backend(self, cloud: Cloud) -> Backend | None:
        """Return the processes behind the API that ``nimbus up`` runs in its own.

        A compute service's scheduler, conductor and agents, say: in a split
        deployment they are separate commands; the all-in-one cloud runs
        them beside the API, on its in-process message bus.
        """
        return None


class Backend(Protocol):
    """Processes behind a service's API: started and stopped with the server."""

    def start(self) -> None:
        """Start serving."""

    def stop(self) -> None:
        """Stop serving."""


def _load_all() -> dict[str, ServiceDescriptor]:
    from nimbus import registry

    found: dict[str, ServiceDescriptor] = {}
    for name in registry.installed_names(NAMESPACE):
        descriptor = registry.load_driver(NAMESPACE, name, expected=ServiceDescriptor)
        if descriptor.name != name:
            raise exception.PluginLoadError(
                namespace=NAMESPACE,
                name=name,
                reason=f"the descriptor calls itself {descriptor.name!r}",
            )
        found[name] = descriptor
    return found


_cache: dict[str, ServiceDescriptor] | None = None


def descriptors(names: Iterable[str] | None = None) -> list[ServiceDescriptor]:
    """Return installed descriptors, each after those it requires.

    :param names: only these services and what they require (all by default).
    :raises PluginNotFound: a name (or a requirement) is not installed.
    """
    global _cache
    if _cache is None:
        _cache = _load_all()
    installed = _cache
    wanted = sorted(installed) if names is None else list(names)
    ordered: list[ServiceDescriptor] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if any(d.name == name for d in ordered):
            return
        if name not in installed:
            raise exception.PluginNotFound(
                namespace=NAMESPACE, name=name, available=", ".join(sorted(installed)) or "none"
            )
        if name in visiting:
            raise exception.PluginLoadError(
                namespace=NAMESPACE, name=name, reason="its requirements form a cycle"
            )
        visiting.add(name)
        for required in installed[name].requires:
            visit(required)
        ordered.append(installed[name])

    for name in wanted:
        visit(name)
    return ordered


def reset_cache() -> None:
    """Forget the loaded descriptors (tests that install one call this)."""
    global _cache
    _cache = None


class Cloud:
    """The collaborators a set of services is built from, created on first use.

    :param conf: the nimbus config.
    :param names: the services to build (with what they require); all
        installed ones by default.
    :param changes: change stamps shared with the other workers of the
        server (``nimbus up`` makes them before it forks); none by default.
    """

    def __init__(
        self,
        conf: cfg.ConfigOpts,
        names: Iterable[str] | None = None,
        *,
        changes: Changes | None = None,
    ) -> None:
        self.conf = conf
        self.descriptors = descriptors(names)
        self._changes = changes
        self._database: Database | None = None
        self._enforcer: Enforcer | None = None
        self._transport: Transport | None = None
        self._components: dict[str, Any] = {}
        for descriptor in self.descriptors:
            for key, value in descriptor.build(self).items():
                if key in self._components or key in type(self).__dict__:
                    raise exception.PluginLoadError(
                        namespace=NAMESPACE,
                        name=descriptor.name,
                        reason=f"it builds {key!r}, which another part of the cloud has",
                    )
                self._components[key] = value

    @property
    def database(self) -> Database:
        """The database, connected on first use."""
        if self._database is None:
            from nimbus.db import Database

            database = Database(self.conf)
            database.wait_for_connection()
            self._database = database
        return self._database

    @property
    def changes(self) -> Changes | None:
        """The change stamps shared with the server's other workers, if any."""
        return self._changes

    @property
    def enforcer(self) -> Enforcer:
        """The policy enforcer, shared by every service."""
        if self._enforcer is None:
            from nimbus.policy import Enforcer

            self._enforcer = Enforcer(self.conf)
        return self._enforcer

    @property
    def transport(self) -> Transport:
        """The message transport, opened on first use."""
        if self._transport is None:
            from nimbus import messaging

            self._transport = messaging.get_transport(self.conf)
        return self._transport

    def __getattr__(self, name: str) -> Any:
        components = self.__dict__.get("_components", {})
        if name in components:
            return components[name]
        raise AttributeError(f"this cloud has no {name!r} (built: {sorted(components)})")

    def names(self) -> list[str]:
        """Return the names of the services built, in dependency order."""
        return [d.name for d in self.descriptors]

    def token_validator(self) -> TokenValidator:
        """Return the validator of the first service that checks tokens.

        :raises PluginLoadError: no service built here checks tokens.
        """
        for descriptor in self.descriptors:
            validator = descriptor.token_validator(self)
            if validator is not None:
                return validator
        raise exception.PluginLoadError(
            namespace=NAMESPACE,
            name=",".join(self.names()),
            reason="none of these services validates tokens; install one that does",
        )

    def each(self, hook: Callable[[ServiceDescriptor], Any]) -> list[Any]:
        """Call *hook* on every descriptor, in dependency order; return the results."""
        return [hook(descriptor) for descriptor in self.descriptors]

    def start_periodic(self, *, startup: bool = True) -> PeriodicRunner:
        """Start a runner of every built service's periodic tasks; return it.

        :param startup: run the start-up tasks first (a process that did not
            go through the services' ``setup``, such as a gunicorn target).
        """
        from nimbus.periodic import PeriodicRunner

        tasks = [task for tasks in self.each(lambda d: d.periodic_tasks(self)) for task in tasks]
        runner = PeriodicRunner(tasks)
        if startup:
            runner.run_startup()
        runner.start()
        return runner

    def close(self) -> None:
        """Release the database connections."""
        if self._database is not None:
            self._database.dispose()


def catalog_entries(conf: cfg.ConfigOpts) -> list[CatalogEntry]:
    """Return the catalog entries of every installed service (all-in-one layout)."""
    entries: list[CatalogEntry] = []
    for descriptor in descriptors():
        entries.extend(descriptor.catalog(conf, service_url(conf, descriptor.name)))
    return entries
