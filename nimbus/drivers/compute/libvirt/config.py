"""Domain XML of a guest, built from a GuestSpec, and read back from libvirt.

Pure functions on strings and :mod:`xml.etree.ElementTree`: no libvirt here,
so they are unit tested on their output alone.

Ids that must survive in the domain's own definition are kept where libvirt
keeps them: a volume's id as the disk's ``<serial>`` and a port's id in a
user alias (``ua-port-<id>``) of its interface, so that detaching needs no
table outside libvirt.
"""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET
from collections.abc import Sequence

from nimbus.drivers.compute.types import GuestSpec, Vif, VolumeConnection

__all__ = [
    "NAMESPACE",
    "DiskFile",
    "disk_targets",
    "domain_name",
    "domain_xml",
    "interface_xml",
    "find_interface",
    "find_volume_disk",
    "next_disk_target",
    "vnc_port",
    "volume_disk_xml",
]

#: The namespace of nimbus's block in a domain's ``<metadata>``.
NAMESPACE = "https://nimbus.invalid/xmlns/libvirt/instance/1"
_NAME_PREFIX = "instance-"
_PORT_ALIAS = "ua-port-"
_LETTERS = "abcdefghijklmnopqrstuvwxyz"


@dataclasses.dataclass(frozen=True)
class DiskFile:
    """A local disk file of a guest: its path, format and guest device."""

    path: str
    disk_format: str
    target: str


def domain_name(uuid: str) -> str:
    """Return the libvirt domain name of the guest *uuid*."""
    return _NAME_PREFIX + uuid


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attrs)
    if text is not None:
        element.text = text
    return element


def _disk(devices: ET.Element, disk: DiskFile) -> None:
    element = _sub(devices, "disk", type="file", device="disk")
    _sub(element, "driver", name="qemu", type=disk.disk_format, cache="none")
    _sub(element, "source", file=disk.path)
    _sub(element, "target", dev=disk.target, bus="virtio")


def _interface(parent: ET.Element, vif: Vif) -> ET.Element:
    element = _sub(parent, "interface", type="bridge")
    _sub(element, "mac", address=vif.mac_address)
    _sub(element, "source", bridge=vif.bridge)
    _sub(element, "target", dev=vif.tap_name)
    _sub(element, "model", type="virtio")
    if vif.mtu is not None:
        _sub(element, "mtu", size=str(vif.mtu))
    _sub(element, "alias", name=_PORT_ALIAS + vif.port_id)
    return element


def domain_xml(
    guest: GuestSpec,
    *,
    virt_type: str,
    disks: Sequence[DiskFile],
    console_log: str,
    vnc_listen: str,
    default_cmdline: str,
    arch: str = "x86_64",
) -> str:
    """Return the domain XML of *guest*.

    :param guest: what to run.
    :param virt_type: the domain type (``qemu`` or ``kvm``).
    :param disks: the guest's disk files, the root disk (``vda``) first.
    :param console_log: the file the serial console is written to.
    :param vnc_listen: the address the VNC server listens on.
    :param default_cmdline: the kernel command line of direct kernel boot
        when the guest names none.
    :param arch: the guest architecture.
    """
    domain = ET.Element("domain", type=virt_type)
    _sub(domain, "name", domain_name(guest.uuid))
    _sub(domain, "uuid", guest.uuid)
    _sub(domain, "title", guest.name)
    _sub(domain, "memory", str(guest.memory_mb * 1024), unit="KiB")
    _sub(domain, "vcpu", str(guest.vcpus))

    metadata = _sub(domain, "metadata")
    ET.register_namespace("nimbus", NAMESPACE)
    block = _sub(metadata, f"{{{NAMESPACE}}}instance")
    _sub(block, f"{{{NAMESPACE}}}name", guest.name)
    for key, value in sorted(guest.metadata.items()):
        _sub(block, f"{{{NAMESPACE}}}meta", str(value), key=str(key))

    os_element = _sub(domain, "os")
    _sub(os_element, "type", "hvm", arch=arch)
    if guest.kernel_path:
        _sub(os_element, "kernel", guest.kernel_path)
        if guest.ramdisk_path:
            _sub(os_element, "initrd", guest.ramdisk_path)
        _sub(os_element, "cmdline", guest.kernel_cmdline or default_cmdline)
    else:
        _sub(os_element, "boot", dev="hd")

    features = _sub(domain, "features")
    # Without ACPI libvirt passes -no-acpi, and a guest's poweroff never
    # ends the domain.
    _sub(features, "acpi")
    _sub(features, "apic")
    _sub(domain, "clock", offset="utc")
    _sub(domain, "on_poweroff", "destroy")
    _sub(domain, "on_reboot", "restart")
    _sub(domain, "on_crash", "destroy")

    devices = _sub(domain, "devices")
    for disk in disks:
        _disk(devices, disk)
    for vif in guest.vifs:
        _interface(devices, vif)
    serial = _sub(devices, "serial", type="file")
    _sub(serial, "source", path=console_log, append="on")
    _sub(serial, "target", port="0")
    console = _sub(devices, "console", type="file")
    _sub(console, "source", path=console_log, append="on")
    _sub(console, "target", type="serial", port="0")
    graphics = _sub(devices, "graphics", type="vnc", autoport="yes", listen=vnc_listen)
    _sub(graphics, "listen", type="address", address=vnc_listen)
    video = _sub(devices, "video")
    _sub(video, "model", type="virtio")
    _sub(devices, "input", type="tablet", bus="usb")
    balloon = _sub(devices, "memballoon", model="virtio")
    _sub(balloon, "stats", period="10")
    return ET.tostring(domain, encoding="unicode")


def volume_disk_xml(connection: VolumeConnection, target: str) -> str:
    """Return the ``<disk>`` element attaching *connection* as *target* (``vdb``)."""
    kind = "block" if connection.path.startswith("/dev/") else "file"
    disk = ET.Element("disk", type=kind, device="disk")
    _sub(disk, "driver", name="qemu", type=connection.disk_format, cache="none")
    _sub(
        disk,
        "source",
        **({"dev": connection.path} if kind == "block" else {"file": connection.path}),
    )
    _sub(disk, "target", dev=target, bus="virtio")
    _sub(disk, "serial", connection.serial or connection.volume_id)
    if connection.read_only:
        _sub(disk, "readonly")
    return ET.tostring(disk, encoding="unicode")


def interface_xml(vif: Vif) -> str:
    """Return the ``<interface>`` element of *vif*."""
    holder = ET.Element("devices")
    return ET.tostring(_interface(holder, vif), encoding="unicode")


def disk_targets(domain: str) -> list[str]:
    """Return the guest device names (``vda``...) of the disks of *domain*'s XML."""
    root = ET.fromstring(domain)
    return [
        target.get("dev", "")
        for target in root.findall("./devices/disk/target")
        if target.get("dev")
    ]


def next_disk_target(domain: str) -> str:
    """Return the first free virtio device name (``vdb``...) in *domain*'s XML.

    :raises ValueError: every name from ``vda`` to ``vdz`` is taken.
    """
    used = set(disk_targets(domain))
    for letter in _LETTERS:
        if f"vd{letter}" not in used:
            return f"vd{letter}"
    raise ValueError("no free virtio disk name left")


def find_volume_disk(domain: str, volume_id: str) -> str | None:
    """Return the ``<disk>`` element of volume *volume_id* in *domain*'s XML, or ``None``."""
    root = ET.fromstring(domain)
    for disk in root.findall("./devices/disk"):
        if disk.findtext("serial") == volume_id:
            return ET.tostring(disk, encoding="unicode")
    return None


def find_interface(domain: str, port_id: str) -> str | None:
    """Return the ``<interface>`` element of port *port_id* in *domain*'s XML, or ``None``."""
    root = ET.fromstring(domain)
    for interface in root.findall("./devices/interface"):
        alias = interface.find("alias")
        if alias is not None and alias.get("name") == _PORT_ALIAS + port_id:
            return ET.tostring(interface, encoding="unicode")
    return None


def vnc_port(domain: str) -> int | None:
    """Return the VNC port of a running domain's XML, or ``None`` when it has none yet."""
    root = ET.fromstring(domain)
    graphics = root.find("./devices/graphics[@type='vnc']")
    if graphics is None:
        return None
    try:
        port = int(graphics.get("port", "-1"))
    except ValueError:
        return None
    return port if port > 0 else None
