"""Fixtures of the database layer's unit tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from oslo_config import cfg

from nimbus.conf import database as database_opts


def clear_database_overrides(conf: cfg.ConfigOpts) -> None:
    """Clear every ``[database]`` override on *conf*.

    oslo.config copies a registered ``OptGroup`` shallowly, so every
    ConfigOpts built from nimbus's module-level group shares its option
    state: an override set on one test's config is seen by the next one.
    """
    for opt in database_opts.OPTS:
        conf.clear_override(opt.dest, group=database_opts.GROUP.name)


@pytest.fixture(autouse=True)
def _isolated_database_options(conf: cfg.ConfigOpts) -> Iterator[None]:
    clear_database_overrides(conf)
    yield
    clear_database_overrides(conf)
