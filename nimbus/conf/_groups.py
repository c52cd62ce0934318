"""The two hooks every option module offers, built from its groups.

An option module lists its ``(group, options)`` pairs once::

    register_opts, list_opts = option_hooks((GROUP, OPTS))

and gets the ``register_opts(conf)`` and ``list_opts()`` functions that
:mod:`nimbus.conf.opts` and the sample generator call.
"""

from __future__ import annotations

from collections.abc import Callable

from oslo_config import cfg

__all__ = ["option_hooks"]

Groups = list[tuple[cfg.OptGroup, list[cfg.Opt]]]


def option_hooks(
    *groups: tuple[cfg.OptGroup, list[cfg.Opt]],
) -> tuple[Callable[[cfg.ConfigOpts], None], Callable[[], Groups]]:
    """Return the ``register_opts`` and ``list_opts`` functions of *groups*.

    :param groups: each option group with the options it holds.
    :returns: ``register_opts(conf)``, which registers every group and its
        options on *conf*, and ``list_opts()``, which returns *groups* for
        the sample generator.
    """

    def register_opts(conf: cfg.ConfigOpts) -> None:
        """Register the module's option groups and their options on *conf*."""
        for group, opts in groups:
            # A fresh group object per config: oslo.config keeps override state
            # on the group, so sharing the module's object would leak it across
            # configs.
            conf.register_group(cfg.OptGroup(group.name, title=group.title, help=group.help))
            conf.register_opts(opts, group=group.name)

    def list_opts() -> Groups:
        """Return the module's options for the sample generator."""
        return list(groups)

    return register_opts, list_opts
