"""nimbus configuration: one module per option group.

:func:`new_config` builds a fresh :class:`oslo_config.cfg.ConfigOpts` with every
nimbus option registered; :func:`load_config` also parses the command line
and the configuration files found in the usual places
(``/etc/nimbus/nimbus.conf``, ``~/.nimbus/nimbus.conf``, ``--config-file``).
Library code takes the config object as an argument and never reads a global.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from oslo_config import cfg

from nimbus.conf import opts

__all__ = ["load_config", "new_config", "state_path"]


def new_config() -> cfg.ConfigOpts:
    """Return a ConfigOpts with every nimbus option group registered."""
    conf = cfg.ConfigOpts()
    opts.register_all(conf)
    return conf


def load_config(
    argv: Sequence[str] | None = None,
    default_config_files: Sequence[str] | None = None,
    conf: cfg.ConfigOpts | None = None,
) -> cfg.ConfigOpts:
    """Parse *argv* and the config files into a new (or the given) ConfigOpts.

    :param argv: command-line arguments, without the program name.
    :param default_config_files: files to read when ``--config-file`` is not
        given; by default oslo.config's search for ``nimbus.conf``.
    """
    from nimbus import __version__

    conf = conf or new_config()
    conf(
        list(argv or []),
        project="nimbus",
        version=__version__,
        default_config_files=list(default_config_files)
        if default_config_files is not None
        else None,
    )
    return conf


def state_path(conf: cfg.ConfigOpts, *parts: str) -> str:
    """Return a path under the configured state directory."""
    return os.path.join(os.path.expanduser(conf.state_path), *parts)
