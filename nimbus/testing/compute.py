"""The contract every compute driver must pass, nimbus's own and third parties'.

Subclass :class:`ComputeDriverContract` in a test module, name the subclass
``Test...`` and give it the ``driver``, ``break_spawn`` and ``leftovers``
fixtures; pytest then runs every contract test against that driver::

    import pytest
    from nimbus.testing.compute import ComputeDriverContract


    class TestMyDriver(ComputeDriverContract):
        @pytest.fixture
        def driver(self, conf):
            return MyDriver(conf, open_connection=fake_hypervisor)

        @pytest.fixture
        def break_spawn(self, driver):
            return lambda: driver.ex_fail_next_spawn(RuntimeError("boom"))

        @pytest.fixture
        def leftovers(self, driver, tmp_path):
            return lambda uuid: {str(p) for p in tmp_path.glob(f"instances/{uuid}*")}

What the fixtures must give:

* ``driver``: a fresh driver on a config of its own, holding no guests.
  The contract calls ``init_host(CONTRACT_HOST)`` on it before each test.
* ``break_spawn``: a callable that makes the *next* ``spawn`` fail after
  it has made something (a disk, a definition), the way a hypervisor
  failure would.  The spawn must then raise a nimbus exception.
* ``leftovers``: a callable taking a uuid and returning what the driver
  still holds of that guest (files, definitions, processes), looked up
  where the driver really keeps them.  The destroy and failed-spawn tests
  assert it returns an empty set, so there is no default.
* ``guest_spec`` (optional): a factory of :class:`~nimbus.drivers.compute.
  types.GuestSpec` taking keyword overrides; override it when the driver
  needs a real image or kernel file.

Tests of optional operations run only when the driver's ``capabilities``
include them and are reported as skipped otherwise; every operation of a
missing capability must raise :class:`~nimbus.exception.OperationNotSupported`,
which is tested on the driver itself or on a copy of it that declares the
capability no more (the ``narrowed`` fixture).
"""

from __future__ import annotations

import inspect
import os
import uuid as uuid_lib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from nimbus import exception
from nimbus.drivers.compute.base import OPTIONAL_OPERATIONS, ComputeDriver
from nimbus.drivers.compute.types import (
    Capability,
    ConsoleEndpoint,
    GuestSpec,
    GuestStats,
    HostResources,
    PowerState,
    Vif,
    VolumeConnection,
)
from nimbus.testing import capabilities as _capabilities

__all__ = [
    "CONTRACT_HOST",
    "ComputeDriverContract",
    "assert_unsupported",
    "make_guest_spec",
    "needs",
    "without_capability",
]

#: The host name the contract passes to ``init_host``.
CONTRACT_HOST = "contract-host"

_ID = "00000000-0000-4000-8000-000000000000"
_VIF = Vif(port_id=_ID, mac_address="fa:16:3e:00:00:01", bridge="brq0", tap_name="tap0")
_VOLUME = VolumeConnection(volume_id=_ID, path=os.devnull)

#: Harmless arguments for each optional operation, for the unsupported checks.
_OPTIONAL_CALLS: dict[str, _capabilities.Call] = {
    "pause": ((_ID,), {}),
    "unpause": ((_ID,), {}),
    "suspend": ((_ID,), {}),
    "resume": ((_ID,), {}),
    "get_console_output": ((_ID,), {}),
    "get_vnc_console": ((_ID,), {}),
    "snapshot": ((_ID,), {"target_path": os.devnull}),
    "attach_volume": ((_ID,), {"connection": _VOLUME}),
    "detach_volume": ((_ID,), {"volume_id": _ID}),
    "attach_interface": ((_ID,), {"vif": _VIF}),
    "detach_interface": ((_ID,), {"port_id": _ID}),
    "get_diagnostics": ((_ID,), {}),
    "get_all_stats": ((), {}),
}

#: The capabilities that guard operations, each tested on its own.
_GUARDS = sorted(set(OPTIONAL_OPERATIONS.values()), key=lambda cap: cap.value)

#: Marks a test as needing capabilities; it is skipped without them.
needs = _capabilities.needs


def assert_unsupported(driver: ComputeDriver, capability: Capability) -> None:
    """Check that each operation needing *capability* raises ``OperationNotSupported``.

    :param driver: a driver whose ``capabilities`` lack *capability*.
    :raises pytest.fail.Exception: an operation ran instead.
    """
    _capabilities.assert_unsupported(driver, capability, OPTIONAL_OPERATIONS, _OPTIONAL_CALLS)


def without_capability(driver: ComputeDriver, capability: Capability) -> ComputeDriver:
    """Return a copy of *driver* that declares *capability* no more.

    :param driver: the driver to copy; the copy shares its state.
    """
    return _capabilities.without_capability(driver, {capability})


def make_guest_spec(**overrides: Any) -> GuestSpec:
    """Return a small guest with a fresh uuid and one NIC; *overrides* replace fields."""
    guest_id = str(uuid_lib.uuid4())
    fields: dict[str, Any] = {
        "uuid": guest_id,
        "name": f"contract-{guest_id[:8]}",
        "memory_mb": 64,
        "vcpus": 1,
        "root_gb": 1,
        "vifs": (
            Vif(
                port_id=str(uuid_lib.uuid4()),
                mac_address="fa:16:3e:12:34:56",
                bridge="brq-contract",
                tap_name=f"tap{guest_id[:11]}",
            ),
        ),
        "metadata": {"purpose": "contract"},
    }
    fields.update(overrides)
    return GuestSpec(**fields)


SpecFactory = Callable[..., GuestSpec]


class ComputeDriverContract:
    """Contract tests of :class:`~nimbus.drivers.compute.base.ComputeDriver`.

    Subclasses provide the ``driver``, ``break_spawn`` and ``leftovers``
    fixtures (see the module docstring).
    """

    #: The ``timeout`` the power-off tests pass: 0 forces the guest off.
    power_off_timeout: float = 0

    # -- fixtures -------------------------------------------------------------

    @pytest.fixture
    def driver(self) -> ComputeDriver:
        """The driver under test: subclasses must override this fixture."""
        raise NotImplementedError("the contract subclass must provide a 'driver' fixture")

    @pytest.fixture
    def break_spawn(self, driver: ComputeDriver) -> Callable[[], None]:
        """Return a callable making the next spawn fail halfway: subclasses override it."""
        raise NotImplementedError(
            "the contract subclass must provide a 'break_spawn' fixture that makes the "
            "next spawn fail after it made something; see nimbus.testing.compute"
        )

    @pytest.fixture
    def leftovers(self, driver: ComputeDriver) -> Callable[[str], set[str]]:
        """Return a callable listing what the driver holds of a guest: subclasses override it.

        Only the driver knows where it keeps guests' files and definitions,
        and a default that sees nothing would let every clean-up check pass.
        """
        raise NotImplementedError(
            "the contract subclass must provide a 'leftovers' fixture returning what the "
            "driver still holds of a guest (files, definitions); see nimbus.testing.compute"
        )

    @pytest.fixture
    def guest_spec(self) -> SpecFactory:
        """Return a factory of guests to spawn (see :func:`make_guest_spec`)."""
        return make_guest_spec

    @pytest.fixture
    def narrowed(self, driver: ComputeDriver) -> Callable[[Capability], ComputeDriver]:
        """Return a factory of copies of *driver* that lack one capability."""
        return lambda capability: without_capability(driver, capability)

    @pytest.fixture(autouse=True)
    def _capability_gate(self, request: pytest.FixtureRequest) -> None:
        _capabilities.skip_unless_offered(request, "driver")

    @pytest.fixture(autouse=True)
    def _host_ready(self, request: pytest.FixtureRequest) -> None:
        if "driver" in request.fixturenames:
            request.getfixturevalue("driver").init_host(CONTRACT_HOST)

    @pytest.fixture
    def running(self, driver: ComputeDriver, guest_spec: SpecFactory) -> Iterator[str]:
        """Return the uuid of a guest spawned and RUNNING; destroyed afterwards."""
        spec = guest_spec()
        driver.spawn(spec)
        yield spec.uuid
        driver.destroy(spec.uuid)

    @pytest.fixture
    def stopped(self, driver: ComputeDriver, guest_spec: SpecFactory) -> Iterator[str]:
        """Return the uuid of a guest spawned with ``power_on=False``."""
        spec = guest_spec()
        driver.spawn(spec, power_on=False)
        yield spec.uuid
        driver.destroy(spec.uuid)

    @staticmethod
    def _state(driver: ComputeDriver, uuid: str) -> PowerState:
        return driver.get_info(uuid).power_state

    # -- the class itself -----------------------------------------------------

    def test_is_a_compute_driver(self, driver: ComputeDriver) -> None:
        assert isinstance(driver, ComputeDriver)

    def test_summary_line_is_one_sentence(self, driver: ComputeDriver) -> None:
        # ``nimbus plugins`` prints the first docstring line to operators.
        summary = (inspect.getdoc(type(driver)) or "").splitlines()
        assert summary, f"{type(driver).__name__} has no docstring"
        assert summary[0].endswith("."), summary[0]
        assert len(summary[0]) <= 79, summary[0]

    def test_capabilities_are_a_frozenset_of_capability(self, driver: ComputeDriver) -> None:
        assert isinstance(driver.capabilities, frozenset)
        assert all(isinstance(cap, Capability) for cap in driver.capabilities)

    @pytest.mark.parametrize("capability", _GUARDS, ids=lambda cap: cap.value)
    def test_missing_capability_raises_operation_not_supported(
        self,
        driver: ComputeDriver,
        narrowed: Callable[[Capability], ComputeDriver],
        capability: Capability,
    ) -> None:
        lacking = narrowed(capability) if capability in driver.capabilities else driver
        assert_unsupported(lacking, capability)

    # -- spawn and destroy ----------------------------------------------------

    def test_spawned_guest_runs_with_its_size(
        self, driver: ComputeDriver, guest_spec: SpecFactory
    ) -> None:
        spec = guest_spec(memory_mb=96, vcpus=2)
        driver.spawn(spec)
        try:
            info = driver.get_info(spec.uuid)
            assert info.uuid == spec.uuid
            assert info.power_state == PowerState.RUNNING
            assert (info.memory_mb, info.vcpus) == (96, 2)
            assert spec.uuid in driver.list_instances()
            assert driver.instance_exists(spec.uuid)
        finally:
            driver.destroy(spec.uuid)

    def test_spawn_without_power_on_leaves_it_shut_down(
        self, driver: ComputeDriver, stopped: str
    ) -> None:
        assert self._state(driver, stopped) == PowerState.SHUTDOWN
        assert stopped in driver.list_instances()

    def test_spawning_a_uuid_twice_is_refused_and_keeps_the_first(
        self, driver: ComputeDriver, guest_spec: SpecFactory, running: str
    ) -> None:
        with pytest.raises(exception.InstanceExists):
            driver.spawn(guest_spec(uuid=running, memory_mb=128))
        info = driver.get_info(running)
        assert info.power_state == PowerState.RUNNING
        assert info.memory_mb == 64

    def test_destroy_removes_the_guest_and_what_it_held(
        self,
        driver: ComputeDriver,
        guest_spec: SpecFactory,
        leftovers: Callable[[str], set[str]],
    ) -> None:
        spec = guest_spec()
        driver.spawn(spec)
        assert leftovers(spec.uuid), "leftovers() sees nothing of a live guest"
        driver.destroy(spec.uuid)
        assert spec.uuid not in driver.list_instances()
        assert not driver.instance_exists(spec.uuid)
        with pytest.raises(exception.InstanceNotFound):
            driver.get_info(spec.uuid)
        assert leftovers(spec.uuid) == set()

    def test_destroy_of_a_stopped_guest(
        self, driver: ComputeDriver, stopped: str, leftovers: Callable[[str], set[str]]
    ) -> None:
        driver.destroy(stopped)
        assert stopped not in driver.list_instances()
        assert leftovers(stopped) == set()

    def test_destroy_is_idempotent(self, driver: ComputeDriver, running: str) -> None:
        driver.destroy(running)
        driver.destroy(running)
        driver.destroy(str(uuid_lib.uuid4()))
        assert running not in driver.list_instances()

    def test_uuid_can_be_spawned_again_after_destroy(
        self, driver: ComputeDriver, guest_spec: SpecFactory
    ) -> None:
        spec = guest_spec()
        driver.spawn(spec)
        driver.destroy(spec.uuid)
        driver.spawn(spec)
        try:
            assert self._state(driver, spec.uuid) == PowerState.RUNNING
        finally:
            driver.destroy(spec.uuid)

    def test_failed_spawn_leaves_nothing_behind(
        self,
        driver: ComputeDriver,
        guest_spec: SpecFactory,
        break_spawn: Callable[[], None],
        leftovers: Callable[[str], set[str]],
    ) -> None:
        spec = guest_spec()
        break_spawn()
        with pytest.raises(exception.NimbusException):
            driver.spawn(spec)
        assert spec.uuid not in driver.list_instances()
        with pytest.raises(exception.InstanceNotFound):
            driver.get_info(spec.uuid)
        assert leftovers(spec.uuid) == set()
        # Nothing stands in the way of the next attempt.
        driver.spawn(spec)
        try:
            assert self._state(driver, spec.uuid) == PowerState.RUNNING
        finally:
            driver.destroy(spec.uuid)

    def test_list_instances_names_every_guest_by_uuid(
        self, driver: ComputeDriver, guest_spec: SpecFactory
    ) -> None:
        specs = [guest_spec() for _ in range(3)]
        for spec in specs:
            driver.spawn(spec)
        try:
            assert {spec.uuid for spec in specs} <= set(driver.list_instances())
            driver.destroy(specs[1].uuid)
            listed = set(driver.list_instances())
            assert specs[1].uuid not in listed
            assert {specs[0].uuid, specs[2].uuid} <= listed
        finally:
            for spec in specs:
                driver.destroy(spec.uuid)

    # -- unknown guests -------------------------------------------------------

    @pytest.mark.parametrize(
        ("operation", "kwargs"),
        [
            ("get_info", {}),
            ("reboot", {"hard": False}),
            ("reboot", {"hard": True}),
            ("power_off", {"timeout": 0}),
            ("power_on", {}),
        ],
        ids=["get_info", "soft_reboot", "hard_reboot", "power_off", "power_on"],
    )
    def test_unknown_guest_is_not_found(
        self, driver: ComputeDriver, operation: str, kwargs: dict[str, Any]
    ) -> None:
        with pytest.raises(exception.InstanceNotFound):
            getattr(driver, operation)(str(uuid_lib.uuid4()), **kwargs)

    # -- power ----------------------------------------------------------------

    def test_power_off_then_on(self, driver: ComputeDriver, running: str) -> None:
        driver.power_off(running, timeout=self.power_off_timeout)
        assert self._state(driver, running) == PowerState.SHUTDOWN
        driver.power_on(running)
        assert self._state(driver, running) == PowerState.RUNNING

    def test_power_off_of_a_stopped_guest_does_nothing(
        self, driver: ComputeDriver, stopped: str
    ) -> None:
        driver.power_off(stopped, timeout=self.power_off_timeout)
        assert self._state(driver, stopped) == PowerState.SHUTDOWN

    def test_power_on_of_a_running_guest_does_nothing(
        self, driver: ComputeDriver, running: str
    ) -> None:
        driver.power_on(running)
        assert self._state(driver, running) == PowerState.RUNNING

    @pytest.mark.parametrize("hard", [False, True], ids=["soft", "hard"])
    def test_reboot_of_a_running_guest(
        self, driver: ComputeDriver, running: str, hard: bool
    ) -> None:
        driver.reboot(running, hard=hard)
        assert self._state(driver, running) == PowerState.RUNNING

    @pytest.mark.parametrize("hard", [False, True], ids=["soft", "hard"])
    def test_reboot_starts_a_stopped_guest(
        self, driver: ComputeDriver, stopped: str, hard: bool
    ) -> None:
        driver.reboot(stopped, hard=hard)
        assert self._state(driver, stopped) == PowerState.RUNNING

    # -- resources ------------------------------------------------------------

    def test_available_resource_reports_totals_and_facts(self, driver: ComputeDriver) -> None:
        res = driver.get_available_resource()
        assert isinstance(res, HostResources)
        assert isinstance(res.hypervisor_hostname, str)
        assert res.hypervisor_hostname
        assert isinstance(res.hypervisor_type, str)
        assert res.hypervisor_type
        assert isinstance(res.hypervisor_version, int)
        for total in (res.vcpus, res.memory_mb, res.local_gb):
            assert isinstance(total, int)
            assert total > 0
        assert res.supported_instances
        for triple in res.supported_instances:
            assert len(triple) == 3
            assert all(isinstance(part, str) for part in triple)
        if res.disk_available_least is not None:
            assert 0 <= res.disk_available_least <= res.local_gb

    def test_available_resource_does_not_change_with_guests(
        self, driver: ComputeDriver, running: str
    ) -> None:
        # Totals only: the scheduler's claims count usage, not the driver.
        first = driver.get_available_resource()
        second = driver.get_available_resource()
        assert (first.vcpus, first.memory_mb, first.local_gb) == (
            second.vcpus,
            second.memory_mb,
            second.local_gb,
        )

    # -- pause ----------------------------------------------------------------

    @needs(Capability.PAUSE)
    def test_pause_and_unpause(self, driver: ComputeDriver, running: str) -> None:
        driver.pause(running)
        assert self._state(driver, running) == PowerState.PAUSED
        driver.unpause(running)
        assert self._state(driver, running) == PowerState.RUNNING

    @needs(Capability.PAUSE)
    def test_pause_of_a_stopped_guest_is_refused(self, driver: ComputeDriver, stopped: str) -> None:
        with pytest.raises(exception.InstanceInvalidState):
            driver.pause(stopped)
        assert self._state(driver, stopped) == PowerState.SHUTDOWN

    @needs(Capability.PAUSE)
    def test_unpause_of_a_running_guest_is_refused(
        self, driver: ComputeDriver, running: str
    ) -> None:
        with pytest.raises(exception.InstanceInvalidState):
            driver.unpause(running)
        assert self._state(driver, running) == PowerState.RUNNING

    @needs(Capability.PAUSE)
    def test_power_on_of_a_paused_guest_is_refused(
        self, driver: ComputeDriver, running: str
    ) -> None:
        driver.pause(running)
        with pytest.raises(exception.InstanceInvalidState):
            driver.power_on(running)
        assert self._state(driver, running) == PowerState.PAUSED

    @needs(Capability.PAUSE)
    def test_reboot_ends_a_paused_guest_running(self, driver: ComputeDriver, running: str) -> None:
        driver.pause(running)
        driver.reboot(running, hard=True)
        assert self._state(driver, running) == PowerState.RUNNING

    @needs(Capability.PAUSE)
    def test_power_off_of_a_paused_guest(self, driver: ComputeDriver, running: str) -> None:
        driver.pause(running)
        driver.power_off(running, timeout=self.power_off_timeout)
        assert self._state(driver, running) == PowerState.SHUTDOWN

    @needs(Capability.PAUSE)
    def test_pause_of_an_unknown_guest_is_not_found(self, driver: ComputeDriver) -> None:
        with pytest.raises(exception.InstanceNotFound):
            driver.pause(str(uuid_lib.uuid4()))

    # -- suspend --------------------------------------------------------------

    @needs(Capability.SUSPEND)
    def test_suspend_and_resume(self, driver: ComputeDriver, running: str) -> None:
        driver.suspend(running)
        assert self._state(driver, running) == PowerState.SUSPENDED
        assert running in driver.list_instances()
        driver.resume(running)
        assert self._state(driver, running) == PowerState.RUNNING

    @needs(Capability.SUSPEND)
    def test_suspend_of_a_stopped_guest_is_refused(
        self, driver: ComputeDriver, stopped: str
    ) -> None:
        with pytest.raises(exception.InstanceInvalidState):
            driver.suspend(stopped)
        assert self._state(driver, stopped) == PowerState.SHUTDOWN

    @needs(Capability.SUSPEND)
    def test_resume_of_a_running_guest_is_refused(
        self, driver: ComputeDriver, running: str
    ) -> None:
        with pytest.raises(exception.InstanceInvalidState):
            driver.resume(running)
        assert self._state(driver, running) == PowerState.RUNNING

    @needs(Capability.SUSPEND)
    def test_power_off_discards_a_suspended_guest(
        self, driver: ComputeDriver, running: str
    ) -> None:
        driver.suspend(running)
        driver.power_off(running, timeout=self.power_off_timeout)
        assert self._state(driver, running) == PowerState.SHUTDOWN
        driver.power_on(running)
        assert self._state(driver, running) == PowerState.RUNNING

    @needs(Capability.SUSPEND)
    def test_destroy_of_a_suspended_guest(
        self, driver: ComputeDriver, running: str, leftovers: Callable[[str], set[str]]
    ) -> None:
        driver.suspend(running)
        driver.destroy(running)
        assert running not in driver.list_instances()
        assert leftovers(running) == set()

    # -- consoles -------------------------------------------------------------

    @needs(Capability.CONSOLE_OUTPUT)
    def test_console_output_is_text(self, driver: ComputeDriver, running: str) -> None:
        assert isinstance(driver.get_console_output(running), str)

    @needs(Capability.CONSOLE_OUTPUT)
    def test_console_output_of_an_unknown_guest_is_not_found(self, driver: ComputeDriver) -> None:
        with pytest.raises(exception.InstanceNotFound):
            driver.get_console_output(str(uuid_lib.uuid4()))

    @needs(Capability.VNC_CONSOLE)
    def test_vnc_console_of_a_running_guest(self, driver: ComputeDriver, running: str) -> None:
        endpoint = driver.get_vnc_console(running)
        assert isinstance(endpoint, ConsoleEndpoint)
        assert endpoint.protocol == "vnc"
        assert endpoint.host
        assert 0 < endpoint.port < 65536

    @needs(Capability.VNC_CONSOLE)
    def test_vnc_console_of_a_stopped_guest_is_refused(
        self, driver: ComputeDriver, stopped: str
    ) -> None:
        with pytest.raises(exception.InstanceInvalidState):
            driver.get_vnc_console(stopped)

    @needs(Capability.VNC_CONSOLE)
    def test_vnc_console_of_an_unknown_guest_is_not_found(self, driver: ComputeDriver) -> None:
        with pytest.raises(exception.InstanceNotFound):
            driver.get_vnc_console(str(uuid_lib.uuid4()))

    # -- snapshot -------------------------------------------------------------

    @needs(Capability.SNAPSHOT)
    def test_snapshot_writes_an_image_file(
        self, driver: ComputeDriver, running: str, tmp_path: Path
    ) -> None:
        target = tmp_path / "snapshot.img"
        disk_format = driver.snapshot(running, target_path=str(target))
        assert disk_format in ("qcow2", "raw")
        assert target.is_file()
        assert target.stat().st_size > 0
        assert self._state(driver, running) == PowerState.RUNNING

    @needs(Capability.SNAPSHOT)
    def test_snapshot_of_a_stopped_guest_keeps_it_stopped(
        self, driver: ComputeDriver, stopped: str, tmp_path: Path
    ) -> None:
        target = tmp_path / "snapshot.img"
        driver.snapshot(stopped, target_path=str(target))
        assert target.is_file()
        assert self._state(driver, stopped) == PowerState.SHUTDOWN

    @needs(Capability.SNAPSHOT)
    def test_snapshot_of_an_unknown_guest_is_not_found(
        self, driver: ComputeDriver, tmp_path: Path
    ) -> None:
        target = tmp_path / "snapshot.img"
        with pytest.raises(exception.InstanceNotFound):
            driver.snapshot(str(uuid_lib.uuid4()), target_path=str(target))
        assert not target.exists()

    # -- volumes --------------------------------------------------------------

    @pytest.fixture
    def volume(self, tmp_path: Path) -> VolumeConnection:
        """A 1 MiB raw file to attach."""
        path = tmp_path / "volume.raw"
        path.write_bytes(b"\0" * 1024 * 1024)
        return VolumeConnection(volume_id=str(uuid_lib.uuid4()), path=str(path))

    @needs(Capability.VOLUME_ATTACH)
    def test_attach_and_detach_a_volume(
        self, driver: ComputeDriver, running: str, volume: VolumeConnection
    ) -> None:
        device = driver.attach_volume(running, connection=volume)
        assert device.startswith("/dev/")
        assert device != "/dev/vda"
        driver.detach_volume(running, volume_id=volume.volume_id)
        with pytest.raises(exception.NotFound):
            driver.detach_volume(running, volume_id=volume.volume_id)
        assert self._state(driver, running) == PowerState.RUNNING

    @needs(Capability.VOLUME_ATTACH)
    def test_attaching_a_volume_twice_is_refused(
        self, driver: ComputeDriver, running: str, volume: VolumeConnection
    ) -> None:
        driver.attach_volume(running, connection=volume)
        with pytest.raises(exception.InstanceInvalidState):
            driver.attach_volume(running, connection=volume)
        driver.detach_volume(running, volume_id=volume.volume_id)

    @needs(Capability.VOLUME_ATTACH)
    def test_attach_to_an_unknown_guest_is_not_found(
        self, driver: ComputeDriver, volume: VolumeConnection
    ) -> None:
        with pytest.raises(exception.InstanceNotFound):
            driver.attach_volume(str(uuid_lib.uuid4()), connection=volume)

    # -- interfaces -----------------------------------------------------------

    @needs(Capability.INTERFACE_ATTACH)
    def test_attach_and_detach_an_interface(self, driver: ComputeDriver, running: str) -> None:
        vif = Vif(
            port_id=str(uuid_lib.uuid4()),
            mac_address="fa:16:3e:aa:bb:cc",
            bridge="brq-contract",
            tap_name="tapcontract2",
        )
        driver.attach_interface(running, vif=vif)
        with pytest.raises(exception.InstanceInvalidState):
            driver.attach_interface(running, vif=vif)
        driver.detach_interface(running, port_id=vif.port_id)
        with pytest.raises(exception.NotFound):
            driver.detach_interface(running, port_id=vif.port_id)

    @needs(Capability.INTERFACE_ATTACH)
    def test_detach_of_an_unknown_port_is_not_found(
        self, driver: ComputeDriver, running: str
    ) -> None:
        with pytest.raises(exception.NotFound):
            driver.detach_interface(running, port_id=str(uuid_lib.uuid4()))

    # -- stats ----------------------------------------------------------------

    @needs(Capability.STATS)
    def test_diagnostics_of_a_guest(self, driver: ComputeDriver, running: str) -> None:
        stats = driver.get_diagnostics(running)
        assert isinstance(stats, GuestStats)
        assert stats.uuid == running
        assert stats.power_state == PowerState.RUNNING
        assert (stats.vcpus, stats.memory_mb) == (1, 64)
        if stats.cpu_time_ns is not None:
            assert stats.cpu_time_ns >= 0

    @needs(Capability.STATS)
    def test_all_stats_cover_every_guest(
        self, driver: ComputeDriver, running: str, stopped: str
    ) -> None:
        stats = driver.get_all_stats()
        assert set(stats) == set(driver.list_instances())
        assert stats[running].power_state == PowerState.RUNNING
        assert stats[stopped].power_state == PowerState.SHUTDOWN

    @needs(Capability.STATS)
    def test_diagnostics_of_an_unknown_guest_is_not_found(self, driver: ComputeDriver) -> None:
        with pytest.raises(exception.InstanceNotFound):
            driver.get_diagnostics(str(uuid_lib.uuid4()))
