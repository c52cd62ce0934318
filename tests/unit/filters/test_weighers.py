"""The in-tree weighers: raw weights, Nova's normalisation and per-aggregate multipliers."""

from __future__ import annotations

import importlib.util
import pathlib

import numpy as np
import pytest
from oslo_config import cfg

from nimbus import registry
from nimbus.filters import RequestSpec, normalize
from nimbus.filters.compute.weighers import CPUWeigher, DiskWeigher, NumInstancesWeigher, RAMWeigher
from nimbus.filters.testing import weight_disagreements

_spec = importlib.util.spec_from_file_location(
    "weigher_fixtures", pathlib.Path(__file__).parent / "conftest.py"
)
assert _spec is not None and _spec.loader is not None
fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fixtures)
host, aggregate = fixtures.host, fixtures.aggregate


def test_normalize_as_nova_does() -> None:
    assert normalize(np.array([2.0, 4.0, 6.0])).tolist() == [0.0, 0.5, 1.0]
    assert normalize(np.array([3.0, 3.0])).tolist() == [0.0, 0.0]
    assert normalize(np.array([2.0, 4.0]), minval=0.0).tolist() == [0.5, 1.0]
    assert normalize(np.array([-2.0, 0.0]), minval=0.0).tolist() == [0.0, 0.0]
    assert normalize(np.zeros(0)).size == 0


def test_raw_weights(conf: cfg.ConfigOpts) -> None:
    state = host(memory_mb_used=1024, vcpus_used=10, local_gb_used=100, num_instances=3)
    spec = RequestSpec()
    assert RAMWeigher(conf).weigh(state, spec) == 32768 - 512 - 1024
    assert CPUWeigher(conf).weigh(state, spec) == 16 * 4.0 - 10
    assert DiskWeigher(conf).weigh(state, spec) == 400 * 1024
    assert NumInstancesWeigher(conf).weigh(state, spec) == 3.0
    for cls in (RAMWeigher, CPUWeigher, DiskWeigher, NumInstancesWeigher):
        assert weight_disagreements(cls(conf), [state, host()], spec) == []


def test_multipliers_default_and_per_aggregate(conf: cfg.ConfigOpts) -> None:
    weigher = RAMWeigher(conf)
    assert weigher.weight_multiplier(host()) == 1.0
    assert NumInstancesWeigher(conf).weight_multiplier(host()) == 0.0
    conf.set_override("ram_weight_multiplier", 3.0, group="scheduler")
    assert weigher.weight_multiplier(host()) == 3.0
    both = host(
        aggregates=(
            aggregate(1, ram_weight_multiplier="2.5"),
            aggregate(2, ram_weight_multiplier="-1"),
            aggregate(3, ram_weight_multiplier="junk"),
        )
    )
    assert weigher.weight_multiplier(both) == -1.0
    assert weight_disagreements(weigher, [host(), both], RequestSpec()) == []


@pytest.mark.parametrize("name", ["ram", "cpu", "disk", "num_instances"])
def test_registered(name: str) -> None:
    assert name in registry.installed_names("nimbus.weighers.compute")
