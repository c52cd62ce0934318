"""The option aggregator: registration and the ``oslo.config.opts`` hook.

nimbus's own groups are listed here; each installed service adds its groups
through its descriptor (:attr:`nimbus.descriptor.ServiceDescriptor.option_modules`).
"""

from __future__ import annotations

import importlib
from typing import Any

from oslo_config import cfg

#: Option modules of the core; each has ``register_opts(conf)`` and ``list_opts()``.
_CORE = (
    "nimbus.conf.default",
    "nimbus.conf.api",
    "nimbus.conf.database",
    "nimbus.conf.messaging",
)


def _modules() -> list[Any]:
    from nimbus import descriptor

    names = list(_CORE)
    for service in descriptor.descriptors():
        names.extend(service.option_modules)
    return [importlib.import_module(name) for name in dict.fromkeys(names)]


def register_all(conf: cfg.ConfigOpts) -> None:
    """Register every nimbus option group (and oslo.policy's) on *conf*."""
    from oslo_policy import opts as policy_opts

    for module in _modules():
        module.register_opts(conf)
    policy_opts._register(conf)


def list_opts() -> list[tuple[str | cfg.OptGroup | None, list[cfg.Opt]]]:
    """Return every nimbus option, grouped, for ``oslo-config-generator``."""
    result: list[tuple[str | cfg.OptGroup | None, list[cfg.Opt]]] = []
    for module in _modules():
        result.extend(module.list_opts())
    return result
