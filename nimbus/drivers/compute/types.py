"""Values that cross the compute driver boundary."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping

__all__ = [
    "Capability",
    "ConsoleEndpoint",
    "GuestInfo",
    "GuestSpec",
    "GuestStats",
    "HostResources",
    "PowerState",
    "Vif",
    "VolumeConnection",
]


class PowerState(enum.IntEnum):
    """What the hypervisor says a guest is doing, with Nova's numbers.

    The compute service stores these in ``instances.power_state`` and the
    API shows them as ``OS-EXT-STS:power_state``.
    """

    NOSTATE = 0
    RUNNING = 1
    PAUSED = 3
    SHUTDOWN = 4
    CRASHED = 6
    SUSPENDED = 7


class Capability(enum.Enum):
    """Optional groups of operations a compute driver may offer."""

    #: ``pause`` / ``unpause``: freeze the vCPUs, memory stays resident.
    PAUSE = "pause"
    #: ``suspend`` / ``resume``: save the guest's memory to disk.
    SUSPEND = "suspend"
    #: ``get_console_output``: the serial console's log.
    CONSOLE_OUTPUT = "console_output"
    #: ``get_vnc_console``: where a VNC client connects.
    VNC_CONSOLE = "vnc_console"
    #: ``snapshot``: copy the root disk to a local image file.
    SNAPSHOT = "snapshot"
    #: ``attach_volume`` / ``detach_volume``.
    VOLUME_ATTACH = "volume_attach"
    #: ``attach_interface`` / ``detach_interface``.
    INTERFACE_ATTACH = "interface_attach"
    #: ``get_diagnostics`` / ``get_all_stats``: counters for meters.
    STATS = "stats"


@dataclasses.dataclass(frozen=True)
class Vif:
    """A NIC to give the guest, plugged by the network driver beforehand.

    :param port_id: the network service's port id.
    :param mac_address: the guest-side MAC, ``aa:bb:cc:dd:ee:ff``.
    :param bridge: the host bridge the tap joins (the network driver names it).
    :param tap_name: the host-side device name (at most 14 characters).
    :param mtu: the link MTU, or ``None`` for the bridge's.
    """

    port_id: str
    mac_address: str
    bridge: str
    tap_name: str
    mtu: int | None = None


@dataclasses.dataclass(frozen=True)
class GuestSpec:
    """Everything :meth:`~nimbus.drivers.compute.base.ComputeDriver.spawn` needs.

    :param uuid: the instance's id; every later call names the guest by it.
    :param name: the instance's display name (for logs and metadata only).
    :param memory_mb: RAM in MiB.
    :param vcpus: virtual CPUs.
    :param root_gb: size of the root disk in GiB; 0 keeps the image's size.
    :param ephemeral_gb: size of an extra empty disk in GiB, 0 for none.
    :param swap_mb: size of a swap disk in MiB, 0 for none.
    :param image_path: the local file of the cached base image, or ``None``
        for a guest without a root image (direct kernel boot only).
    :param image_format: ``qcow2`` or ``raw``: the base image's format.
    :param kernel_path: a local kernel for direct kernel boot, or ``None``.
    :param ramdisk_path: a local initramfs for direct kernel boot, or ``None``.
    :param kernel_cmdline: the kernel command line; a default serial
        console setting is used when ``None``.
    :param vifs: the NICs, in guest order.
    :param user_data: cloud-init user data, or ``None``.
    :param metadata: instance metadata (key to value).
    :param key_data: the public key of the instance's key pair, or ``None``.
    """

    uuid: str
    name: str
    memory_mb: int
    vcpus: int
    root_gb: int
    ephemeral_gb: int = 0
    swap_mb: int = 0
    image_path: str | None = None
    image_format: str = "qcow2"
    kernel_path: str | None = None
    ramdisk_path: str | None = None
    kernel_cmdline: str | None = None
    vifs: tuple[Vif, ...] = ()
    user_data: bytes | None = None
    metadata: Mapping[str, str] = dataclasses.field(default_factory=dict)
    key_data: str | None = None


@dataclasses.dataclass(frozen=True)
class GuestInfo:
    """A guest's state as ``get_info`` reports it.

    :param uuid: the instance's id.
    :param power_state: what the hypervisor says the guest is doing.
    :param memory_mb: RAM given to the guest, in MiB.
    :param vcpus: virtual CPUs given to the guest.
    :param cpu_time_ns: CPU time the guest used, or ``None`` when unknown.
    """

    uuid: str
    power_state: PowerState
    memory_mb: int
    vcpus: int
    cpu_time_ns: int | None = None


@dataclasses.dataclass(frozen=True)
class HostResources:
    """A host's totals and facts, from ``get_available_resource``.

    Usage is not reported: the scheduler's claims count it.

    :param hypervisor_hostname: the node name the scheduler knows the host by.
    :param hypervisor_type: ``fake``, ``QEMU``, ...
    :param hypervisor_version: the hypervisor's version as one integer
        (Nova's: major * 1,000,000 + minor * 1,000 + release).
    :param vcpus: physical CPUs the host offers (before allocation ratios).
    :param memory_mb: RAM in MiB.
    :param local_gb: space for instance disks, in GiB.
    :param cpu_info: facts about the CPU (``arch``, ``model``, ``vendor``,
        ``topology``...).
    :param supported_instances: ``(arch, hv_type, vm_mode)`` triples.
    :param disk_available_least: GiB still free for disks, or ``None``.
    """

    hypervisor_hostname: str
    hypervisor_type: str
    hypervisor_version: int
    vcpus: int
    memory_mb: int
    local_gb: int
    cpu_info: Mapping[str, object]
    supported_instances: tuple[tuple[str, str, str], ...]
    disk_available_least: int | None = None


@dataclasses.dataclass(frozen=True)
class ConsoleEndpoint:
    """Where a console client connects: ``get_vnc_console``'s answer."""

    host: str
    port: int
    protocol: str


@dataclasses.dataclass(frozen=True)
class VolumeConnection:
    """How the host reaches a volume, as the volume driver exports it.

    :param volume_id: the volume's id; ``detach_volume`` names it.
    :param driver_volume_type: the transport: ``file`` (a local file) is
        the one the in-tree drivers know.
    :param path: the local file or block device.
    :param disk_format: ``raw`` or ``qcow2``.
    :param serial: the serial the guest sees (the volume id by default).
    :param read_only: attach read-only.
    """

    volume_id: str
    path: str
    driver_volume_type: str = "file"
    disk_format: str = "raw"
    serial: str | None = None
    read_only: bool = False


@dataclasses.dataclass(frozen=True)
class GuestStats:
    """Counters of one guest, for meters; ``None`` where the driver cannot tell.

    Counters (CPU time, bytes) only grow while the guest lives.
    """

    uuid: str
    power_state: PowerState
    vcpus: int
    memory_mb: int
    cpu_time_ns: int | None = None
    memory_used_mb: int | None = None
    disk_read_bytes: int | None = None
    disk_write_bytes: int | None = None
    net_rx_bytes: int | None = None
    net_tx_bytes: int | None = None
