"""The ``libvirt`` compute driver: QEMU guests through libvirt."""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import shutil
import subprocess
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Sequence
from types import ModuleType
from typing import Any

from oslo_config import cfg

from nimbus import exception
from nimbus.conf import compute_drivers
from nimbus.drivers.compute.base import ComputeDriver
from nimbus.drivers.compute.libvirt import config
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

__all__ = ["LibvirtDriver", "run_command"]

LOG = logging.getLogger(__name__)

_DRIVER = "libvirt"
#: The most console log a caller gets: its end (Nova's limit too).
MAX_CONSOLE_BYTES = 100 * 1024

# libvirt's numbers, spelt out so that this module imports without libvirt.
_VIR_DOMAIN_NOSTATE = 0
_VIR_DOMAIN_RUNNING = 1
_VIR_DOMAIN_BLOCKED = 2
_VIR_DOMAIN_PAUSED = 3
_VIR_DOMAIN_SHUTDOWN = 4
_VIR_DOMAIN_SHUTOFF = 5
_VIR_DOMAIN_CRASHED = 6
_VIR_DOMAIN_PMSUSPENDED = 7
_VIR_DOMAIN_AFFECT_LIVE = 1
_VIR_DOMAIN_AFFECT_CONFIG = 2
_VIR_DOMAIN_XML_INACTIVE = 2
_VIR_DOMAIN_UNDEFINE_MANAGED_SAVE = 1
_VIR_ERR_NO_DOMAIN = 42
_VIR_ERR_OPERATION_INVALID = 55
_VIR_DOMAIN_STATS_STATE = 1
_VIR_DOMAIN_STATS_CPU_TOTAL = 2
_VIR_DOMAIN_STATS_BALLOON = 4
_VIR_DOMAIN_STATS_INTERFACE = 16
_VIR_DOMAIN_STATS_BLOCK = 32
_STATS = (
    _VIR_DOMAIN_STATS_STATE
    | _VIR_DOMAIN_STATS_CPU_TOTAL
    | _VIR_DOMAIN_STATS_BALLOON
    | _VIR_DOMAIN_STATS_INTERFACE
    | _VIR_DOMAIN_STATS_BLOCK
)

_POWER_STATES = {
    _VIR_DOMAIN_NOSTATE: PowerState.NOSTATE,
    _VIR_DOMAIN_RUNNING: PowerState.RUNNING,
    _VIR_DOMAIN_BLOCKED: PowerState.RUNNING,
    _VIR_DOMAIN_PAUSED: PowerState.PAUSED,
    # Still shutting down: it runs until it is off.
    _VIR_DOMAIN_SHUTDOWN: PowerState.RUNNING,
    _VIR_DOMAIN_SHUTOFF: PowerState.SHUTDOWN,
    _VIR_DOMAIN_CRASHED: PowerState.CRASHED,
    _VIR_DOMAIN_PMSUSPENDED: PowerState.SUSPENDED,
}

_libvirt_module: ModuleType | None = None
_module_lock = threading.Lock()


def _ignore_libvirt_error(_context: object, _error: object) -> None:
    """Swallow libvirt's own report: every error is raised, and wrapped, anyway."""


def _import_libvirt() -> ModuleType:
    """Return the libvirt module, with its printing to stderr silenced."""
    global _libvirt_module
    with _module_lock:
        if _libvirt_module is None:
            try:
                module = importlib.import_module("libvirt")
            except ImportError as ex:
                raise exception.DriverError(
                    driver=_DRIVER,
                    reason=f"libvirt-python is not installed ({ex}); install nimbus-cloud[libvirt]",
                ) from ex
            module.registerErrorHandler(_ignore_libvirt_error, None)
            _libvirt_module = module
        return _libvirt_module


def open_connection(uri: str) -> Any:
    """Open a read-write libvirt connection to *uri*: the default opener."""
    return _import_libvirt().open(uri)


def run_command(argv: Sequence[str]) -> None:
    """Run *argv* (``qemu-img``); a failure raises ``DriverError`` with its stderr."""
    try:
        subprocess.run(list(argv), check=True, capture_output=True, text=True)
    except subprocess.CalledProcessError as ex:
        raise exception.DriverError(
            driver=_DRIVER,
            reason=f"{' '.join(argv)} exited with {ex.returncode}: {ex.stderr.strip()}",
        ) from ex
    except OSError as ex:
        raise exception.DriverError(driver=_DRIVER, reason=f"cannot run {argv[0]}: {ex}") from ex


class LibvirtDriver(ComputeDriver):
    """QEMU guests through libvirt, with software emulation or KVM.

    Reads ``[libvirt]``.  Each guest is a persistent domain named
    ``instance-<uuid>`` whose disks (qcow2 overlays on the cached base
    image) and serial console log live in ``instances_path/<uuid>/``;
    domains with other names are not the driver's and are never listed.

    :param open_connection: opens a libvirt connection to a URI (tests
        pass one to ``test:///default`` through ``connection_uri``).
    :param run_command: runs ``qemu-img`` (an argv); raises
        ``DriverError`` on failure.
    """

    capabilities = frozenset(Capability)

    def __init__(
        self,
        conf: cfg.ConfigOpts,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        open_connection: Callable[[str], Any] = open_connection,
        run_command: Callable[[Sequence[str]], None] = run_command,
    ) -> None:
        super().__init__(conf, clock=clock, sleep=sleep)
        compute_drivers.register_opts(conf)
        self._open_connection = open_connection
        self._run = run_command
        self._lock = threading.Lock()
        self._conn: Any = None
        self._host: str | None = None
        self._spawning: set[str] = set()

    @property
    def _opts(self) -> Any:
        return self.conf.libvirt

    # -- plumbing -------------------------------------------------------------

    @contextlib.contextmanager
    def _calling(self, action: str, uuid: str | None = None) -> Iterator[None]:
        """Turn a libvirt error of *action* into a nimbus one naming the driver."""
        libvirt = _import_libvirt()
        try:
            yield
        except libvirt.libvirtError as ex:
            if uuid is not None and ex.get_error_code() == _VIR_ERR_NO_DOMAIN:
                raise exception.InstanceNotFound(uuid=uuid) from ex
            raise exception.DriverError(driver=_DRIVER, reason=f"{action}: {ex}") from ex

    def _connection(self) -> Any:
        with self._lock:
            conn = self._conn
            if conn is not None:
                with contextlib.suppress(Exception):
                    if conn.isAlive():
                        return conn
            uri = self._opts.connection_uri
            with self._calling(f"cannot connect to {uri}"):
                self._conn = self._open_connection(uri)
            return self._conn

    def _instance_dir(self, uuid: str) -> str:
        return os.path.join(self._opts.instances_path, uuid)

    def _try_lookup(self, uuid: str) -> Any:
        """Return the driver's domain of *uuid*, or ``None``."""
        conn = self._connection()
        try:
            with self._calling(f"cannot look up instance {uuid}", uuid):
                domain = conn.lookupByUUIDString(uuid)
            with self._calling(f"cannot read the name of instance {uuid}", uuid):
                name = domain.name()
        except exception.InstanceNotFound:
            return None
        return domain if name == config.domain_name(uuid) else None

    def _lookup(self, uuid: str) -> Any:
        domain = self._try_lookup(uuid)
        if domain is None:
            raise exception.InstanceNotFound(uuid=uuid)
        return domain

    def _power_state(self, domain: Any, uuid: str) -> PowerState:
        with self._calling(f"cannot read the state of instance {uuid}", uuid):
            state = domain.state()[0]
            if state == _VIR_DOMAIN_SHUTOFF and domain.hasManagedSaveImage(0):
                return PowerState.SUSPENDED
        return _POWER_STATES.get(state, PowerState.NOSTATE)

    def _expect(self, domain: Any, uuid: str, operation: str, *states: PowerState) -> PowerState:
        state = self._power_state(domain, uuid)
        if state not in states:
            raise exception.InstanceInvalidState(
                uuid=uuid, operation=operation, state=state.name.lower()
            )
        return state

    def _stop(self, domain: Any, uuid: str, timeout: float) -> None:
        """Ask a running domain to shut down, and force it off after *timeout*."""
        with self._calling(f"cannot stop instance {uuid}", uuid):
            if not domain.isActive():
                return
            if timeout > 0 and domain.state()[0] == _VIR_DOMAIN_RUNNING:
                domain.shutdown()
                deadline = self.clock() + timeout
                while domain.isActive() and self.clock() < deadline:
                    self.sleep(min(self._opts.shutdown_retry_interval, timeout))
                if not domain.isActive():
                    return
                LOG.info("Instance %s did not shut down in %s s; forcing it off", uuid, timeout)
            try:
                domain.destroy()
            except _import_libvirt().libvirtError as ex:
                # It stopped on its own in the meantime.
                if ex.get_error_code() != _VIR_ERR_OPERATION_INVALID or domain.isActive():
                    raise

    def _discard_saved_memory(self, domain: Any, uuid: str) -> None:
        with self._calling(f"cannot discard the saved memory of instance {uuid}", uuid):
            if domain.hasManagedSaveImage(0):
                domain.managedSaveRemove(0)

    def _start(self, domain: Any, uuid: str) -> None:
        with self._calling(f"cannot start instance {uuid}", uuid):
            domain.create()

    def _qemu_img(self, *args: str) -> None:
        self._run([self._opts.qemu_img, *args])

    # -- the lifecycle core ---------------------------------------------------

    def init_host(self, host: str) -> None:
        self._host = host
        self._connection()
        try:
            os.makedirs(self._opts.instances_path, mode=0o755, exist_ok=True)
        except OSError as ex:
            raise exception.DriverError(
                driver=_DRIVER, reason=f"cannot make {self._opts.instances_path}: {ex}"
            ) from ex

    def _make_disks(self, guest: GuestSpec, directory: str) -> list[config.DiskFile]:
        disks: list[config.DiskFile] = []

        def target() -> str:
            return "vd" + "abcdefghijklmnopqrstuvwxyz"[len(disks)]

        root = os.path.join(directory, "disk")
        size = [f"{guest.root_gb}G"] if guest.root_gb > 0 else []
        if guest.image_path:
            self._qemu_img(
                "create", "-f", "qcow2", "-b", guest.image_path, "-F", guest.image_format,
                root, *size,
            )  # fmt: skip
            disks.append(config.DiskFile(root, "qcow2", target()))
        elif size:
            self._qemu_img("create", "-f", "qcow2", root, *size)
            disks.append(config.DiskFile(root, "qcow2", target()))
        if guest.ephemeral_gb > 0:
            path = os.path.join(directory, "disk.eph0")
            self._qemu_img("create", "-f", "qcow2", path, f"{guest.ephemeral_gb}G")
            disks.append(config.DiskFile(path, "qcow2", target()))
        if guest.swap_mb > 0:
            path = os.path.join(directory, "disk.swap")
            self._qemu_img("create", "-f", "qcow2", path, f"{guest.swap_mb}M")
            disks.append(config.DiskFile(path, "qcow2", target()))
        return disks

    def spawn(self, guest: GuestSpec, *, power_on: bool = True) -> None:
        uuid = guest.uuid
        with self._lock:
            if uuid in self._spawning:
                raise exception.InstanceExists(uuid=uuid)
            self._spawning.add(uuid)
        try:
            if self._try_lookup(uuid) is not None:
                raise exception.InstanceExists(uuid=uuid)
            self._spawn(guest, power_on=power_on)
        finally:
            with self._lock:
                self._spawning.discard(uuid)

    def _spawn(self, guest: GuestSpec, *, power_on: bool) -> None:
        uuid = guest.uuid
        directory = self._instance_dir(uuid)
        domain = None
        try:
            try:
                # A directory without a domain is what a crashed spawn left.
                if os.path.isdir(directory):
                    shutil.rmtree(directory)
                os.makedirs(directory, mode=0o755)
            except OSError as ex:
                raise exception.DriverError(
                    driver=_DRIVER, reason=f"cannot make {directory}: {ex}"
                ) from ex
            disks = self._make_disks(guest, directory)
            xml = config.domain_xml(
                guest,
                virt_type=self._opts.virt_type,
                disks=disks,
                console_log=os.path.join(directory, "console.log"),
                vnc_listen=self._opts.vnc_listen,
                default_cmdline=self._opts.kernel_cmdline,
            )
            with self._calling(f"cannot define instance {uuid}"):
                domain = self._connection().defineXML(xml)
            if power_on:
                self._start(domain, uuid)
        except BaseException:
            self._clean_up_spawn(uuid, domain, directory)
            raise

    def _clean_up_spawn(self, uuid: str, domain: Any, directory: str) -> None:
        """Remove what a failed spawn made; log (and keep the first error) if that fails."""
        try:
            if domain is not None:
                self._remove_domain(domain, uuid)
        except exception.NimbusException:
            LOG.exception("Could not remove the domain of failed spawn %s", uuid)
        shutil.rmtree(directory, ignore_errors=True)

    def _remove_domain(self, domain: Any, uuid: str) -> None:
        libvirt = _import_libvirt()
        try:
            self._stop(domain, uuid, 0)
            with self._calling(f"cannot undefine instance {uuid}", uuid):
                domain.undefineFlags(_VIR_DOMAIN_UNDEFINE_MANAGED_SAVE)
        except exception.InstanceNotFound:
            return
        except libvirt.libvirtError as ex:
            raise exception.DriverError(driver=_DRIVER, reason=str(ex)) from ex

    def destroy(self, uuid: str, *, destroy_disks: bool = True) -> None:
        domain = self._try_lookup(uuid)
        if domain is not None:
            self._remove_domain(domain, uuid)
        if destroy_disks:
            try:
                shutil.rmtree(self._instance_dir(uuid))
            except FileNotFoundError:
                pass
            except OSError as ex:
                raise exception.DriverError(
                    driver=_DRIVER, reason=f"cannot remove the files of instance {uuid}: {ex}"
                ) from ex

    def reboot(self, uuid: str, *, hard: bool) -> None:
        domain = self._lookup(uuid)
        state = self._power_state(domain, uuid)
        soft = not hard and state == PowerState.RUNNING
        self._stop(domain, uuid, self._opts.graceful_shutdown_timeout if soft else 0)
        self._discard_saved_memory(domain, uuid)
        self._start(domain, uuid)

    def power_off(self, uuid: str, *, timeout: float) -> None:
        domain = self._lookup(uuid)
        self._discard_saved_memory(domain, uuid)
        self._stop(domain, uuid, timeout)

    def power_on(self, uuid: str) -> None:
        domain = self._lookup(uuid)
        state = self._expect(
            domain,
            uuid,
            "power on",
            PowerState.RUNNING,
            PowerState.SHUTDOWN,
            PowerState.CRASHED,
            PowerState.NOSTATE,
        )
        if state != PowerState.RUNNING:
            self._start(domain, uuid)

    def get_info(self, uuid: str) -> GuestInfo:
        domain = self._lookup(uuid)
        power_state = self._power_state(domain, uuid)
        with self._calling(f"cannot read instance {uuid}", uuid):
            _state, max_kib, _kib, vcpus, cpu_time = domain.info()
        return GuestInfo(
            uuid=uuid,
            power_state=power_state,
            memory_mb=max_kib // 1024,
            vcpus=vcpus,
            cpu_time_ns=cpu_time,
        )

    def _own_domains(self) -> list[tuple[str, Any]]:
        with self._calling("cannot list domains"):
            domains = self._connection().listAllDomains(0)
            named = [(domain.UUIDString(), domain.name(), domain) for domain in domains]
        return [(uuid, domain) for uuid, name, domain in named if name == config.domain_name(uuid)]

    def list_instances(self) -> list[str]:
        return [uuid for uuid, _domain in self._own_domains()]

    def get_available_resource(self) -> HostResources:
        conn = self._connection()
        with self._calling("cannot read the host's resources"):
            model, memory_mb, cpus, _mhz, _nodes, sockets, cores, threads = conn.getInfo()
            hv_type = conn.getType()
            hv_version = conn.getVersion()
            hostname = conn.getHostname()
            capabilities = ET.fromstring(conn.getCapabilities())
        try:
            disk = shutil.disk_usage(self._opts.instances_path)
        except OSError as ex:
            raise exception.DriverError(
                driver=_DRIVER, reason=f"cannot read the space of {self._opts.instances_path}: {ex}"
            ) from ex
        gib = 1024**3
        cpu = capabilities.find("host/cpu")
        cpu_info: dict[str, object] = {
            "arch": (cpu.findtext("arch") if cpu is not None else None) or model,
            "model": (cpu.findtext("model") if cpu is not None else None) or model,
            "vendor": (cpu.findtext("vendor") if cpu is not None else None) or "unknown",
            "topology": {"sockets": sockets, "cores": cores, "threads": threads},
        }
        return HostResources(
            hypervisor_hostname=hostname or self._host or "localhost",
            hypervisor_type=hv_type,
            hypervisor_version=hv_version,
            vcpus=cpus,
            memory_mb=memory_mb,
            local_gb=max(1, disk.total // gib),
            cpu_info=cpu_info,
            supported_instances=self._supported_instances(capabilities),
            disk_available_least=min(disk.free // gib, max(1, disk.total // gib)),
        )

    def _supported_instances(self, capabilities: ET.Element) -> tuple[tuple[str, str, str], ...]:
        """Return ``(arch, hv_type, vm_mode)`` of each guest kind the host runs."""
        wanted = self._opts.virt_type
        found: list[tuple[str, str, str]] = []
        others: list[tuple[str, str, str]] = []
        for guest in capabilities.findall("guest"):
            vm_mode = guest.findtext("os_type") or "hvm"
            arch = guest.find("arch")
            if arch is None:
                continue
            for domain in arch.findall("domain"):
                triple = (arch.get("name", ""), domain.get("type", ""), vm_mode)
                (found if triple[1] == wanted else others).append(triple)
        # A host without the wanted type (libvirt's test driver) reports what it has.
        return tuple(dict.fromkeys(found or others))

    # -- optional operations --------------------------------------------------

    def pause(self, uuid: str) -> None:
        domain = self._lookup(uuid)
        self._expect(domain, uuid, "pause", PowerState.RUNNING)
        with self._calling(f"cannot pause instance {uuid}", uuid):
            domain.suspend()

    def unpause(self, uuid: str) -> None:
        domain = self._lookup(uuid)
        self._expect(domain, uuid, "unpause", PowerState.PAUSED)
        with self._calling(f"cannot unpause instance {uuid}", uuid):
            domain.resume()

    def suspend(self, uuid: str) -> None:
        domain = self._lookup(uuid)
        self._expect(domain, uuid, "suspend", PowerState.RUNNING)
        with self._calling(f"cannot suspend instance {uuid}", uuid):
            domain.managedSave(0)

    def resume(self, uuid: str) -> None:
        domain = self._lookup(uuid)
        self._expect(domain, uuid, "resume", PowerState.SUSPENDED)
        self._start(domain, uuid)

    def get_console_output(self, uuid: str) -> str:
        self._lookup(uuid)
        path = os.path.join(self._instance_dir(uuid), "console.log")
        try:
            with open(path, "rb") as log:
                size = os.fstat(log.fileno()).st_size
                log.seek(max(0, size - MAX_CONSOLE_BYTES))
                data = log.read(MAX_CONSOLE_BYTES)
        except FileNotFoundError:
            return ""
        except OSError as ex:
            raise exception.DriverError(driver=_DRIVER, reason=f"cannot read {path}: {ex}") from ex
        return data.decode("utf-8", errors="replace")

    def get_vnc_console(self, uuid: str) -> ConsoleEndpoint:
        domain = self._lookup(uuid)
        self._expect(domain, uuid, "open a console of", PowerState.RUNNING, PowerState.PAUSED)
        with self._calling(f"cannot read instance {uuid}", uuid):
            port = config.vnc_port(domain.XMLDesc(0))
        if port is None:
            raise exception.DriverError(
                driver=_DRIVER, reason=f"instance {uuid} has no VNC port (yet)"
            )
        return ConsoleEndpoint(
            host=self._opts.vnc_host or self._opts.vnc_listen, port=port, protocol="vnc"
        )

    def snapshot(self, uuid: str, *, target_path: str) -> str:
        domain = self._lookup(uuid)
        disk = os.path.join(self._instance_dir(uuid), "disk")
        if not os.path.exists(disk):
            raise exception.DriverError(driver=_DRIVER, reason=f"instance {uuid} has no root disk")
        if os.path.lexists(target_path):
            raise exception.DriverError(driver=_DRIVER, reason=f"{target_path} exists already")
        running = self._power_state(domain, uuid) == PowerState.RUNNING
        if running:
            # Frozen vCPUs write nothing, so the copy is consistent on disk.
            with self._calling(f"cannot pause instance {uuid}", uuid):
                domain.suspend()
        try:
            self._qemu_img("convert", "-U", "-O", "qcow2", disk, target_path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(target_path)
            raise
        finally:
            if running:
                with self._calling(f"cannot unpause instance {uuid}", uuid):
                    domain.resume()
        return "qcow2"

    def _device_flags(self, domain: Any, uuid: str) -> int:
        with self._calling(f"cannot read instance {uuid}", uuid):
            active = domain.isActive()
        return _VIR_DOMAIN_AFFECT_CONFIG | (_VIR_DOMAIN_AFFECT_LIVE if active else 0)

    def _xml(self, domain: Any, uuid: str, flags: int = 0) -> str:
        with self._calling(f"cannot read instance {uuid}", uuid):
            return str(domain.XMLDesc(flags))

    def attach_volume(
        self, uuid: str, *, connection: VolumeConnection, mountpoint: str | None = None
    ) -> str:
        domain = self._lookup(uuid)
        xml = self._xml(domain, uuid)
        if config.find_volume_disk(xml, connection.volume_id) is not None:
            raise exception.InstanceInvalidState(
                uuid=uuid,
                operation=f"attach volume {connection.volume_id} to",
                state="using it already",
            )
        if mountpoint is None:
            try:
                target = config.next_disk_target(xml)
            except ValueError as ex:
                raise exception.DriverError(driver=_DRIVER, reason=str(ex)) from ex
        else:
            target = os.path.basename(mountpoint)
            if target in config.disk_targets(xml):
                raise exception.InstanceInvalidState(
                    uuid=uuid, operation=f"attach a volume at {mountpoint} to", state="using it"
                )
        flags = self._device_flags(domain, uuid)
        with self._calling(f"cannot attach volume {connection.volume_id} to {uuid}", uuid):
            domain.attachDeviceFlags(config.volume_disk_xml(connection, target), flags)
        return f"/dev/{target}"

    def detach_volume(self, uuid: str, *, volume_id: str) -> None:
        domain = self._lookup(uuid)
        disk = config.find_volume_disk(self._xml(domain, uuid), volume_id)
        if disk is None:
            raise exception.NotFound(kind="volume attachment", id=f"{volume_id} on {uuid}")
        flags = self._device_flags(domain, uuid)
        with self._calling(f"cannot detach volume {volume_id} from {uuid}", uuid):
            domain.detachDeviceFlags(disk, flags)

    def attach_interface(self, uuid: str, *, vif: Vif) -> None:
        domain = self._lookup(uuid)
        if config.find_interface(self._xml(domain, uuid), vif.port_id) is not None:
            raise exception.InstanceInvalidState(
                uuid=uuid, operation=f"attach port {vif.port_id} to", state="using it already"
            )
        flags = self._device_flags(domain, uuid)
        with self._calling(f"cannot attach port {vif.port_id} to {uuid}", uuid):
            domain.attachDeviceFlags(config.interface_xml(vif), flags)

    def detach_interface(self, uuid: str, *, port_id: str) -> None:
        domain = self._lookup(uuid)
        interface = config.find_interface(self._xml(domain, uuid), port_id)
        if interface is None:
            raise exception.NotFound(kind="interface", id=f"port {port_id} on {uuid}")
        flags = self._device_flags(domain, uuid)
        with self._calling(f"cannot detach port {port_id} from {uuid}", uuid):
            domain.detachDeviceFlags(interface, flags)

    def _stats_of(self, uuid: str, domain: Any, values: dict[str, Any]) -> GuestStats:
        info = self.get_info(uuid)

        def total(kind: str, counter: str) -> int | None:
            count = values.get(f"{kind}.count")
            if count is None:
                return None
            return sum(int(values.get(f"{kind}.{i}.{counter}", 0)) for i in range(count))

        rss = values.get("balloon.rss")
        cpu_time = values.get("cpu.time", info.cpu_time_ns)
        return GuestStats(
            uuid=uuid,
            power_state=info.power_state,
            vcpus=info.vcpus,
            memory_mb=info.memory_mb,
            cpu_time_ns=int(cpu_time) if cpu_time is not None else None,
            memory_used_mb=int(rss) // 1024 if rss is not None else None,
            disk_read_bytes=total("block", "rd.bytes"),
            disk_write_bytes=total("block", "wr.bytes"),
            net_rx_bytes=total("net", "rx.bytes"),
            net_tx_bytes=total("net", "tx.bytes"),
        )

    def get_diagnostics(self, uuid: str) -> GuestStats:
        domain = self._lookup(uuid)
        with self._calling(f"cannot read the counters of instance {uuid}", uuid):
            records = self._connection().domainListGetStats([domain], _STATS, 0)
        values = records[0][1] if records else {}
        return self._stats_of(uuid, domain, values)

    def get_all_stats(self) -> dict[str, GuestStats]:
        with self._calling("cannot read the guests' counters"):
            records = self._connection().getAllDomainStats(_STATS, 0)
            by_uuid = {domain.UUIDString(): (domain, values) for domain, values in records}
        stats = {}
        for uuid, _domain in self._own_domains():
            if uuid in by_uuid:
                domain, values = by_uuid[uuid]
                with contextlib.suppress(exception.InstanceNotFound):
                    stats[uuid] = self._stats_of(uuid, domain, values)
        return stats
