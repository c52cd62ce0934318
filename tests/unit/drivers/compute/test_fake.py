"""The ``fake`` compute driver against the contract, plus its own extras."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from oslo_config import cfg

from nimbus import exception, registry
from nimbus.drivers.compute import ComputeDriver, PowerState
from nimbus.drivers.compute.fake import FakeDriver
from nimbus.testing.compute import ComputeDriverContract, make_guest_spec


class FakeClock:
    """A monotonic clock that moves only when slept on."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


class TestFakeDriver(ComputeDriverContract):
    @pytest.fixture
    def driver(self, conf: cfg.ConfigOpts, clock: FakeClock) -> FakeDriver:
        return FakeDriver(conf, clock=clock, sleep=clock.sleep)

    @pytest.fixture
    def break_spawn(self, driver: FakeDriver) -> Callable[[], None]:
        return lambda: driver.ex_fail_next_spawn(
            exception.DriverError(driver="FakeDriver", reason="injected")
        )

    @pytest.fixture
    def leftovers(self, driver: FakeDriver) -> Callable[[str], set[str]]:
        return driver.ex_leftovers


def test_loads_through_its_entry_point(conf: cfg.ConfigOpts) -> None:
    driver = registry.load_driver("nimbus.compute.drivers", "fake", conf, expected=ComputeDriver)
    assert isinstance(driver, FakeDriver)


def test_reports_novas_fake_sizes_by_default(conf: cfg.ConfigOpts) -> None:
    res = FakeDriver(conf).get_available_resource()
    assert (res.vcpus, res.memory_mb, res.local_gb) == (1000, 800000, 600000)
    assert res.hypervisor_hostname == "fake-mini"
    assert res.hypervisor_type == "fake"


def test_hostname_follows_init_host_unless_configured(conf: cfg.ConfigOpts) -> None:
    driver = FakeDriver(conf)
    driver.init_host("compute-7")
    assert driver.get_available_resource().hypervisor_hostname == "compute-7"
    conf.set_override("hypervisor_hostname", "node-a", group="fake_compute")
    assert driver.get_available_resource().hypervisor_hostname == "node-a"


def test_sizes_come_from_the_options(conf: cfg.ConfigOpts) -> None:
    driver = FakeDriver(conf)
    conf.set_override("vcpus", 8, group="fake_compute")
    conf.set_override("memory_mb", 16384, group="fake_compute")
    conf.set_override("local_gb", 200, group="fake_compute")
    res = driver.get_available_resource()
    assert (res.vcpus, res.memory_mb, res.local_gb) == (8, 16384, 200)


def test_drivers_in_one_process_share_no_guests(conf: cfg.ConfigOpts) -> None:
    first, second = FakeDriver(conf), FakeDriver(conf)
    spec = make_guest_spec()
    first.spawn(spec)
    assert first.list_instances() == [spec.uuid]
    assert second.list_instances() == []
    # The same uuid may live on another host (an evacuation in progress).
    second.spawn(spec, power_on=False)
    first.destroy(spec.uuid)
    assert second.get_info(spec.uuid).power_state == PowerState.SHUTDOWN


def test_spawn_takes_the_configured_delay(conf: cfg.ConfigOpts, clock: FakeClock) -> None:
    driver = FakeDriver(conf, clock=clock, sleep=clock.sleep)
    conf.set_override("spawn_delay", 2.5, group="fake_compute")
    driver.spawn(make_guest_spec())
    assert clock.slept == [2.5]


def test_power_off_waits_the_timeout_for_a_guest_ignoring_shutdown(
    conf: cfg.ConfigOpts, clock: FakeClock
) -> None:
    driver = FakeDriver(conf, clock=clock, sleep=clock.sleep)
    spec = make_guest_spec()
    driver.spawn(spec)
    driver.power_off(spec.uuid, timeout=30)
    assert clock.slept == []
    driver.power_on(spec.uuid)
    driver.ex_ignore_shutdown(spec.uuid)
    driver.power_off(spec.uuid, timeout=30)
    assert clock.slept == [30]
    assert driver.get_info(spec.uuid).power_state == PowerState.SHUTDOWN
    assert "forced off" in driver.get_console_output(spec.uuid)


def test_cpu_time_counts_only_while_running(conf: cfg.ConfigOpts, clock: FakeClock) -> None:
    driver = FakeDriver(conf, clock=clock, sleep=clock.sleep)
    spec = make_guest_spec(vcpus=2)
    driver.spawn(spec)
    clock.now += 10
    assert driver.get_info(spec.uuid).cpu_time_ns == 20 * 10**9
    driver.pause(spec.uuid)
    clock.now += 100
    assert driver.get_diagnostics(spec.uuid).cpu_time_ns == 20 * 10**9


def test_console_log_tells_the_guests_story(conf: cfg.ConfigOpts) -> None:
    driver = FakeDriver(conf)
    spec = make_guest_spec()
    driver.spawn(spec)
    driver.reboot(spec.uuid, hard=True)
    log = driver.get_console_output(spec.uuid)
    assert log.index("booted") < log.index("hard reboot") < log.index("rebooted")
    assert f"{spec.name} login:" in log


def test_invalid_state_names_the_state_and_operation(conf: cfg.ConfigOpts) -> None:
    driver = FakeDriver(conf)
    spec = make_guest_spec()
    driver.spawn(spec, power_on=False)
    with pytest.raises(exception.InstanceInvalidState) as info:
        driver.pause(spec.uuid)
    assert str(info.value) == f"Cannot pause instance {spec.uuid} while it is shutdown."


def test_volumes_get_the_next_free_device(conf: cfg.ConfigOpts, tmp_path) -> None:
    from nimbus.drivers.compute import VolumeConnection

    driver = FakeDriver(conf)
    spec = make_guest_spec()
    driver.spawn(spec)
    first = VolumeConnection(volume_id="v1", path=str(tmp_path / "a"))
    second = VolumeConnection(volume_id="v2", path=str(tmp_path / "b"))
    assert driver.attach_volume(spec.uuid, connection=first) == "/dev/vdb"
    assert driver.attach_volume(spec.uuid, connection=second) == "/dev/vdc"
    driver.detach_volume(spec.uuid, volume_id="v1")
    third = VolumeConnection(volume_id="v3", path=str(tmp_path / "c"))
    assert driver.attach_volume(spec.uuid, connection=third) == "/dev/vdb"
