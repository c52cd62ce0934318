"""A third-party scheduler filter is used by adding its name to ``enabled_filters``.

The example distribution ``examples/nimbus-filter-example`` is installed by
pip into a temporary ``--target`` directory put on ``sys.path`` (see
``test_third_party_plugin.py`` for why not into the running environment).
"""

from __future__ import annotations

import importlib.util
import pathlib
import shutil
import subprocess
import sys
from collections.abc import Iterator

import pytest
from oslo_config import cfg
from stevedore import extension

from nimbus import exception, registry
from nimbus.compute.scheduler import HostInventory, RequestSpec, Scheduler
from nimbus.compute.scheduler import migrations as scheduler_migrations
from nimbus.db import Database

NAMESPACE = "nimbus.filters.compute"
EXAMPLE = pathlib.Path(__file__).resolve().parents[2] / "examples" / "nimbus-filter-example"
PACKAGE = "nimbus_filter_example"


@pytest.fixture(scope="module")
def filter_site(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """A directory holding the example distribution, installed by pip."""
    assert importlib.util.find_spec(PACKAGE) is None, f"{PACKAGE} must not be importable yet"
    work = tmp_path_factory.mktemp("filter-plugin")
    source = work / "source"
    shutil.copytree(
        EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__", ".tox")
    )
    site = work / "site"
    command = [
        sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
        "--no-deps", "--no-index", "--no-build-isolation", "--no-cache-dir",
        "--target", str(site), str(source),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return site


@pytest.fixture
def filter_installed(filter_site: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The example distribution, visible to this test only."""
    monkeypatch.syspath_prepend(str(filter_site))
    monkeypatch.setattr(extension.ExtensionManager, "ENTRY_POINT_CACHE", {})
    yield
    for name in [name for name in sys.modules if name.split(".")[0] == PACKAGE]:
        del sys.modules[name]


@pytest.mark.usefixtures("filter_installed")
def test_enabled_by_name_it_filters(conf: cfg.ConfigOpts, tmp_path: pathlib.Path) -> None:
    (info,) = [p for p in registry.list_plugins([NAMESPACE]) if p.name == "max_instances"]
    assert info.distribution == "nimbus-filter-example"
    database = Database(conf, url=f"sqlite:///{tmp_path}/scheduler.sqlite")
    scheduler_migrations.upgrade(database)
    inventory = HostInventory(conf, database)
    for host in ("h1", "h2", "h3"):
        inventory.service_heartbeat(host, "nimbus-compute", f"compute.{host}")
        inventory.update_node(
            host, host, vcpus=64, memory_mb=65536, local_gb=1000, hypervisor_type="qemu",
            hypervisor_version=1, cpu_info={}, supported_instances=[["x86_64", "qemu", "hvm"]],
        )  # fmt: skip
    conf.set_override(
        "enabled_filters", ["compute", "ram", "core", "max_instances"], group="scheduler"
    )
    scheduler = Scheduler(conf, database)
    assert [name for name, _ in scheduler.filters][-1] == "max_instances"
    conf.set_override("max_instances_per_host", 1, group="filter_example")
    spec = RequestSpec(vcpus=1, memory_mb=512)
    placed = scheduler.select_destinations(spec, ["a", "b", "c"])
    assert sorted(s.host for s in placed) == ["h1", "h2", "h3"]
    with pytest.raises(exception.NoValidHost) as info_:
        scheduler.select_destinations(spec, ["d"])
    assert str(info_.value).endswith(
        "core: 3 -> 3 hosts; max_instances: 3 -> 0 hosts "
        "(h1: runs 1 of 1 instances; h2: runs 1 of 1 instances; h3: runs 1 of 1 instances)"
    )
