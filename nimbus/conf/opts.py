"""The option aggregator: registration and the ``oslo.config.opts`` hook."""

from __future__ import annotations

import importlib

from oslo_config import cfg

#: Option modules; each has ``register_opts(conf)`` and ``list_opts()``.
_MODULES = (
    "nimbus.conf.default",
    "nimbus.conf.api",
    "nimbus.conf.database",
    "nimbus.conf.identity",
    "nimbus.conf.messaging",
    "nimbus.conf.image",
)


def _modules() -> list:
    return [importlib.import_module(name) for name in _MODULES]


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
