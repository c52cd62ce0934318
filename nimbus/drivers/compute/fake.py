"""The ``fake`` compute driver: guests in memory."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Collection

from oslo_config import cfg

from nimbus import exception
from nimbus.conf import compute_drivers
from nimbus.drivers.compute.base import ComputeDriver
from nimbus.drivers.compute.types import (
    Capability,
    ConsoleEndpoint,
    GuestInfo,
    GuestSpec,
    GuestStats,
    HostResources,
    PowerState,
    Vif,
    VolumeConnection,
)

__all__ = ["FakeDriver"]

_DEFAULT_NODE = "fake-mini"
_VNC_BASE_PORT = 5900


@dataclasses.dataclass
class _Guest:
    spec: GuestSpec
    state: PowerState
    vnc_port: int
    console: list[str] = dataclasses.field(default_factory=list)
    # When the guest last started, on the driver's clock, and the CPU time
    # it used before that.
    started: float | None = None
    cpu_before: float = 0.0
    volumes: dict[str, str] = dataclasses.field(default_factory=dict)
    vifs: dict[str, Vif] = dataclasses.field(default_factory=dict)
    ignores_shutdown: bool = False


class FakeDriver(ComputeDriver):
    """Guests in memory, with honest state changes: for tests and demos.

    Reads ``[fake_compute]``.  Each instance is one fake host: several in
    one process share nothing.  Safe to call from several threads.
    """

    capabilities = frozenset(Capability)

    def __init__(
        self,
        conf: cfg.ConfigOpts,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(conf, clock=clock, sleep=sleep)
        compute_drivers.register_opts(conf)
        self._lock = threading.Lock()
        self._guests: dict[str, _Guest] = {}
        self._host: str | None = None
        self._next_port = _VNC_BASE_PORT
        self._fail_next_spawn: Exception | None = None
        # What a spawn made before it failed, so tests can see it is gone.
        self._building: set[str] = set()

    @property
    def _opts(self) -> cfg.ConfigOpts.GroupAttr:
        return self.conf.fake_compute

    # -- helpers --------------------------------------------------------------

    def _get(self, uuid: str) -> _Guest:
        guest = self._guests.get(uuid)
        if guest is None:
            raise exception.InstanceNotFound(uuid=uuid)
        return guest

    def _expect(self, guest: _Guest, operation: str, *states: PowerState) -> None:
        if guest.state not in states:
            raise exception.InstanceInvalidState(
                uuid=guest.spec.uuid, operation=operation, state=guest.state.name.lower()
            )

    def _start(self, guest: _Guest, event: str) -> None:
        guest.state = PowerState.RUNNING
        guest.started = self.clock()
        guest.console.append(f"[fake] {guest.spec.uuid} {event}")
        guest.console.append(f"[fake] {guest.spec.name} login:")

    def _stop(self, guest: _Guest, state: PowerState, event: str) -> None:
        if guest.started is not None:
            guest.cpu_before += self.clock() - guest.started
            guest.started = None
        guest.state = state
        guest.console.append(f"[fake] {guest.spec.uuid} {event}")

    def _cpu_time_ns(self, guest: _Guest) -> int:
        seconds = guest.cpu_before
        if guest.started is not None:
            seconds += self.clock() - guest.started
        return int(seconds * 1e9) * guest.spec.vcpus

    # -- the lifecycle core ---------------------------------------------------

    def init_host(self, host: str) -> None:
        self._host = host

    def spawn(self, guest: GuestSpec, *, power_on: bool = True) -> None:
        with self._lock:
            if guest.uuid in self._guests or guest.uuid in self._building:
                raise exception.InstanceExists(uuid=guest.uuid)
            self._building.add(guest.uuid)
            failure, self._fail_next_spawn = self._fail_next_spawn, None
        try:
            if self._opts.spawn_delay:
                self.sleep(self._opts.spawn_delay)
            if failure is not None:
                raise failure
            with self._lock:
                fake = _Guest(spec=guest, state=PowerState.SHUTDOWN, vnc_port=self._next_port)
                self._next_port += 1
                fake.console.append(f"[fake] {guest.uuid} created")
                if power_on:
                    self._start(fake, "booted")
                self._guests[guest.uuid] = fake
        finally:
            with self._lock:
                self._building.discard(guest.uuid)

    def destroy(self, uuid: str, *, destroy_disks: bool = True) -> None:
        with self._lock:
            self._guests.pop(uuid, None)

    def reboot(self, uuid: str, *, hard: bool) -> None:
        with self._lock:
            guest = self._get(uuid)
            self._stop(guest, PowerState.SHUTDOWN, "hard reboot" if hard else "reboot")
            self._start(guest, "rebooted")

    def power_off(self, uuid: str, *, timeout: float) -> None:
        with self._lock:
            guest = self._get(uuid)
            if guest.state == PowerState.SHUTDOWN:
                return
            ignores = guest.ignores_shutdown and guest.state == PowerState.RUNNING
        if ignores:
            # The guest OS does not answer the request: wait, then force.
            self.sleep(timeout)
        with self._lock:
            guest = self._get(uuid)
            self._stop(guest, PowerState.SHUTDOWN, "forced off" if ignores else "powered off")

    def power_on(self, uuid: str) -> None:
        with self._lock:
            guest = self._get(uuid)
            if guest.state == PowerState.RUNNING:
                return
            self._expect(guest, "power on", PowerState.SHUTDOWN)
            self._start(guest, "powered on")

    def get_info(self, uuid: str) -> GuestInfo:
        with self._lock:
            guest = self._get(uuid)
            return GuestInfo(
                uuid=uuid,
                power_state=guest.state,
                memory_mb=guest.spec.memory_mb,
                vcpus=guest.spec.vcpus,
                cpu_time_ns=self._cpu_time_ns(guest),
            )

    def list_instances(self) -> list[str]:
        with self._lock:
            return list(self._guests)

    def get_available_resource(self) -> HostResources:
        opts = self._opts
        return HostResources(
            hypervisor_hostname=opts.hypervisor_hostname or self._host or _DEFAULT_NODE,
            hypervisor_type="fake",
            hypervisor_version=1000,
            vcpus=opts.vcpus,
            memory_mb=opts.memory_mb,
            local_gb=opts.local_gb,
            cpu_info={"arch": "x86_64", "model": "fake", "vendor": "nimbus"},
            supported_instances=(("x86_64", "fake", "hvm"), ("i686", "fake", "hvm")),
            disk_available_least=opts.local_gb,
        )

    # -- optional operations --------------------------------------------------

    def _transition(
        self, uuid: str, operation: str, allowed: Collection[PowerState], to: PowerState
    ) -> None:
        with self._lock:
            guest = self._get(uuid)
            self._expect(guest, operation, *allowed)
            if to == PowerState.RUNNING:
                self._start(guest, operation)
            else:
                self._stop(guest, to, operation)

    def pause(self, uuid: str) -> None:
        self._transition(uuid, "pause", {PowerState.RUNNING}, PowerState.PAUSED)

    def unpause(self, uuid: str) -> None:
        self._transition(uuid, "unpause", {PowerState.PAUSED}, PowerState.RUNNING)

    def suspend(self, uuid: str) -> None:
        self._transition(uuid, "suspend", {PowerState.RUNNING}, PowerState.SUSPENDED)

    def resume(self, uuid: str) -> None:
        self._transition(uuid, "resume", {PowerState.SUSPENDED}, PowerState.RUNNING)

    def get_console_output(self, uuid: str) -> str:
        with self._lock:
            return "".join(line + "\n" for line in self._get(uuid).console)

    def get_vnc_console(self, uuid: str) -> ConsoleEndpoint:
        with self._lock:
            guest = self._get(uuid)
            self._expect(guest, "open a console of", PowerState.RUNNING, PowerState.PAUSED)
            return ConsoleEndpoint(host="127.0.0.1", port=guest.vnc_port, protocol="vnc")

    def snapshot(self, uuid: str, *, target_path: str) -> str:
        with self._lock:
            spec = self._get(uuid).spec
        # Exclusive creation: a snapshot never overwrites a file.
        with open(target_path, "xb") as target:
            target.write(f"fake disk of {spec.uuid}\n".encode())
        return "raw"

    def attach_volume(
        self, uuid: str, *, connection: VolumeConnection, mountpoint: str | None = None
    ) -> str:
        with self._lock:
            guest = self._get(uuid)
            if connection.volume_id in guest.volumes:
                raise exception.InstanceInvalidState(
                    uuid=uuid,
                    operation=f"attach volume {connection.volume_id} to",
                    state="using it already",
                )
            used = set(guest.volumes.values())
            if mountpoint is None:
                letter = next(c for c in "bcdefghijklmnopqrstuvwxyz" if f"/dev/vd{c}" not in used)
                mountpoint = f"/dev/vd{letter}"
            elif mountpoint in used:
                raise exception.InstanceInvalidState(
                    uuid=uuid, operation=f"attach a volume at {mountpoint} to", state="using it"
                )
            guest.volumes[connection.volume_id] = mountpoint
            return mountpoint

    def detach_volume(self, uuid: str, *, volume_id: str) -> None:
        with self._lock:
            guest = self._get(uuid)
            if guest.volumes.pop(volume_id, None) is None:
                raise exception.NotFound(kind="volume attachment", id=f"{volume_id} on {uuid}")

    def attach_interface(self, uuid: str, *, vif: Vif) -> None:
        with self._lock:
            guest = self._get(uuid)
            if vif.port_id in guest.vifs or any(v.port_id == vif.port_id for v in guest.spec.vifs):
                raise exception.InstanceInvalidState(
                    uuid=uuid, operation=f"attach port {vif.port_id} to", state="using it already"
                )
            guest.vifs[vif.port_id] = vif

    def detach_interface(self, uuid: str, *, port_id: str) -> None:
        with self._lock:
            guest = self._get(uuid)
            if guest.vifs.pop(port_id, None) is not None:
                return
            if any(v.port_id == port_id for v in guest.spec.vifs):
                guest.spec = dataclasses.replace(
                    guest.spec, vifs=tuple(v for v in guest.spec.vifs if v.port_id != port_id)
                )
                return
            raise exception.NotFound(kind="interface", id=f"port {port_id} on {uuid}")

    def _stats(self, guest: _Guest) -> GuestStats:
        cpu = self._cpu_time_ns(guest)
        return GuestStats(
            uuid=guest.spec.uuid,
            power_state=guest.state,
            vcpus=guest.spec.vcpus,
            memory_mb=guest.spec.memory_mb,
            cpu_time_ns=cpu,
            memory_used_mb=guest.spec.memory_mb // 2 if guest.state == PowerState.RUNNING else 0,
            # Made-up I/O that grows with the CPU time, as counters must.
            disk_read_bytes=cpu // 1000,
            disk_write_bytes=cpu // 2000,
            net_rx_bytes=cpu // 4000,
            net_tx_bytes=cpu // 8000,
        )

    def get_diagnostics(self, uuid: str) -> GuestStats:
        with self._lock:
            return self._stats(self._get(uuid))

    def get_all_stats(self) -> dict[str, GuestStats]:
        with self._lock:
            return {uuid: self._stats(guest) for uuid, guest in self._guests.items()}

    # -- test hooks -----------------------------------------------------------

    def ex_fail_next_spawn(self, error: Exception) -> None:
        """Make the next spawn fail with *error* halfway (for tests)."""
        with self._lock:
            self._fail_next_spawn = error

    def ex_ignore_shutdown(self, uuid: str, ignore: bool = True) -> None:
        """Make the guest ignore graceful shutdown requests, as busybox does."""
        with self._lock:
            self._get(uuid).ignores_shutdown = ignore

    def ex_leftovers(self, uuid: str) -> set[str]:
        """Return what the driver still holds of *uuid* (for tests)."""
        with self._lock:
            held = set()
            if uuid in self._guests:
                held.add(f"guest {uuid}")
            if uuid in self._building:
                held.add(f"spawn of {uuid}")
            return held
