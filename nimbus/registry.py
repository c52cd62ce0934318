"""The one place nimbus loads plugins, on top of stevedore.

Drivers load with :func:`load_driver`; ordered, operator-enabled filters and
weighers with :func:`load_ordered`.  stevedore's failures become
:class:`~nimbus.exception.PluginNotFound` or
:class:`~nimbus.exception.PluginLoadError`, naming the namespace, the name
asked for and the names installed.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
from collections.abc import Sequence
from importlib.metadata import EntryPoint
from typing import Any

from stevedore import driver, named
from stevedore import exception as stevedore_exc

from nimbus import exception

__all__ = [
    "NAMESPACES",
    "PluginInfo",
    "construct",
    "installed_names",
    "list_plugins",
    "load_driver",
    "load_ordered",
]

#: Every namespace nimbus owns, with what it holds.
NAMESPACES: dict[str, str] = {
    "nimbus.identity.backends": "users and groups stores",
    "nimbus.messaging.transports": "message bus transports",
    "nimbus.compute.drivers": "hypervisor drivers",
    "nimbus.volume.drivers": "block storage back-ends",
    "nimbus.network.drivers": "host networking back-ends",
    "nimbus.image.stores": "image data stores",
    "nimbus.meter.pollsters": "telemetry pollsters",
    "nimbus.meter.publishers": "telemetry publishers",
    "nimbus.filters.compute": "compute scheduler filters",
    "nimbus.weighers.compute": "compute scheduler weighers",
    "nimbus.filters.volume": "volume scheduler filters",
    "nimbus.weighers.volume": "volume scheduler weighers",
    "nimbus.services": "service descriptors (APIs, options, policies, migrations)",
    "nimbus.db.migrations": "database migration branches of SQL-backed drivers",
}


@dataclasses.dataclass(frozen=True)
class PluginInfo:
    """One installed entry point, as ``nimbus plugins`` prints it."""

    namespace: str
    name: str
    target: str
    distribution: str
    summary: str


def _entry_points(namespace: str) -> list[EntryPoint]:
    return sorted(importlib.metadata.entry_points(group=namespace), key=lambda ep: ep.name)


def installed_names(namespace: str) -> list[str]:
    """Return the sorted entry-point names installed in *namespace*."""
    return sorted({ep.name for ep in _entry_points(namespace)})


def _not_found(namespace: str, name: str) -> exception.PluginNotFound:
    available = ", ".join(installed_names(namespace)) or "none"
    return exception.PluginNotFound(namespace=namespace, name=name, available=available)


def _check_type(namespace: str, name: str, plugin: Any, expected: type | None) -> None:
    if expected is None:
        return
    cls = plugin if isinstance(plugin, type) else type(plugin)
    if not (isinstance(cls, type) and issubclass(cls, expected)):
        raise exception.PluginLoadError(
            namespace=namespace,
            name=name,
            reason=f"{cls!r} is not a subclass of {expected.__module__}.{expected.__qualname__}",
        )


def load_driver(
    namespace: str,
    name: str,
    *args: Any,
    expected: type | None = None,
    invoke: bool = True,
    **kwargs: Any,
) -> Any:
    """Load the one plugin *name* from *namespace*.

    :param namespace: the entry-point group, e.g. ``nimbus.identity.backends``.
    :param name: the entry-point name the operator configured.
    :param args: positional arguments for the plugin's constructor.
    :param expected: a base class the plugin must derive from.
    :param invoke: instantiate the plugin (``False`` returns the class).
    :param kwargs: keyword arguments for the plugin's constructor.
    :returns: the plugin instance, or its class when ``invoke`` is false.
    :raises PluginNotFound: nothing of that name is installed.
    :raises PluginLoadError: the plugin failed to import, to construct, or
        is not a subclass of *expected*.
    """
    failures: list[BaseException] = []

    def _on_failure(_manager: Any, _entrypoint: EntryPoint, ex: BaseException) -> None:
        failures.append(ex)

    try:
        manager: driver.DriverManager[Any] = driver.DriverManager(
            namespace,
            name,
            invoke_on_load=False,
            on_load_failure_callback=_on_failure,
        )
    except stevedore_exc.NoMatches:
        if failures:
            raise exception.PluginLoadError(
                namespace=namespace,
                name=name,
                reason=f"{type(failures[0]).__name__}: {failures[0]}",
            ) from failures[0]
        raise _not_found(namespace, name) from None
    except stevedore_exc.MultipleMatches as ex:
        raise exception.PluginLoadError(
            namespace=namespace, name=name, reason=f"several distributions provide it ({ex})"
        ) from ex
    plugin = manager.driver
    _check_type(namespace, name, plugin, expected)
    if not invoke:
        return plugin
    return construct(namespace, name, plugin, *args, **kwargs)


def construct(namespace: str, name: str, plugin: Any, *args: Any, **kwargs: Any) -> Any:
    """Return ``plugin(*args, **kwargs)``, the plugin *name* of *namespace* made.

    For a plugin class loaded with ``invoke=False`` and made later.

    :raises PluginLoadError: the constructor raised anything but a
        :class:`~nimbus.exception.NimbusException` (which passes as it is).
    """
    try:
        return plugin(*args, **kwargs)
    except exception.NimbusException:
        raise
    except Exception as ex:
        raise exception.PluginLoadError(
            namespace=namespace, name=name, reason=f"{type(ex).__name__}: {ex}"
        ) from ex


def load_ordered(
    namespace: str,
    names: Sequence[str],
    *args: Any,
    expected: type | None = None,
    **kwargs: Any,
) -> list[Any]:
    """Load the plugins *names* from *namespace*, instantiated, in that order.

    :raises PluginNotFound: one of the names is not installed.
    :raises PluginLoadError: one of them failed to load or has the wrong type.
    """
    installed = set(installed_names(namespace))
    for name in names:
        if name not in installed:
            raise _not_found(namespace, name)
    failures: dict[str, BaseException] = {}

    def _on_failure(_manager: Any, entrypoint: EntryPoint, ex: BaseException) -> None:
        failures[entrypoint.name] = ex

    manager: named.NamedExtensionManager[Any] = named.NamedExtensionManager(
        namespace,
        names=list(names),
        name_order=True,
        invoke_on_load=False,
        on_load_failure_callback=_on_failure,
    )
    for name, ex in failures.items():
        raise exception.PluginLoadError(
            namespace=namespace, name=name, reason=f"{type(ex).__name__}: {ex}"
        ) from ex
    loaded = []
    for ext in manager.extensions:
        _check_type(namespace, ext.name, ext.plugin, expected)
        loaded.append(ext.plugin(*args, **kwargs))
    return loaded


def _summary(obj: Any) -> str:
    doc = getattr(obj, "__doc__", None) or ""
    for line in doc.strip().splitlines():
        if line.strip():
            return line.strip()
    return ""


def list_plugins(namespaces: Sequence[str] | None = None) -> list[PluginInfo]:
    """Describe every installed plugin in *namespaces* (all of nimbus's by default).

    A plugin that fails to import is still listed, with the error as its summary.
    """
    result = []
    for namespace in namespaces or list(NAMESPACES):
        for ep in _entry_points(namespace):
            dist = ep.dist.name if ep.dist is not None else "?"
            try:
                summary = _summary(ep.load())
            except Exception as ex:  # noqa: BLE001 - a listing must not die on one bad plugin
                summary = f"(cannot load: {type(ex).__name__}: {ex})"
            result.append(
                PluginInfo(
                    namespace=namespace,
                    name=ep.name,
                    target=ep.value,
                    distribution=dist,
                    summary=summary,
                )
            )
    return result
