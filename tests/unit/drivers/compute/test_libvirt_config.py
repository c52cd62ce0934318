"""The domain XML the libvirt driver builds, read back with ElementTree."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from nimbus.drivers.compute import GuestSpec, Vif, VolumeConnection
from nimbus.drivers.compute.libvirt import config

UUID = "6f1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
VIF = Vif(
    port_id="11111111-2222-4333-8444-555555555555",
    mac_address="fa:16:3e:01:02:03",
    bridge="brq1234",
    tap_name="tap11111111-22",
    mtu=1450,
)
ROOT = config.DiskFile("/srv/instances/x/disk", "qcow2", "vda")


def build(**overrides: object) -> ET.Element:
    fields: dict = {
        "uuid": UUID,
        "name": "web-1",
        "memory_mb": 512,
        "vcpus": 2,
        "root_gb": 1,
        "vifs": (VIF,),
        "metadata": {"role": "web"},
    }
    fields.update(overrides)
    xml = config.domain_xml(
        GuestSpec(**fields),
        virt_type="qemu",
        disks=[ROOT, config.DiskFile("/srv/instances/x/disk.eph0", "qcow2", "vdb")],
        console_log="/srv/instances/x/console.log",
        vnc_listen="127.0.0.1",
        default_cmdline="console=ttyS0",
    )
    return ET.fromstring(xml)


def test_identity_size_and_type() -> None:
    root = build()
    assert root.tag == "domain"
    assert root.get("type") == "qemu"
    assert root.findtext("uuid") == UUID
    assert root.findtext("name") == f"instance-{UUID}"
    memory = root.find("memory")
    assert memory is not None
    assert (memory.text, memory.get("unit")) == (str(512 * 1024), "KiB")
    assert root.findtext("vcpu") == "2"


def test_acpi_and_apic_and_hvm() -> None:
    root = build()
    assert root.find("features/acpi") is not None
    assert root.find("features/apic") is not None
    os_type = root.find("os/type")
    assert os_type is not None
    assert (os_type.text, os_type.get("arch")) == ("hvm", "x86_64")


def test_boots_from_the_disk_without_a_kernel() -> None:
    root = build()
    assert root.find("os/kernel") is None
    boot = root.find("os/boot")
    assert boot is not None
    assert boot.get("dev") == "hd"


def test_direct_kernel_boot() -> None:
    root = build(kernel_path="/cache/vmlinuz", ramdisk_path="/cache/initrd.gz")
    assert root.findtext("os/kernel") == "/cache/vmlinuz"
    assert root.findtext("os/initrd") == "/cache/initrd.gz"
    assert root.findtext("os/cmdline") == "console=ttyS0"
    assert root.find("os/boot") is None
    custom = build(kernel_path="/k", kernel_cmdline="console=ttyS0 quiet")
    assert custom.findtext("os/cmdline") == "console=ttyS0 quiet"
    assert custom.find("os/initrd") is None


def test_disks_are_virtio_files_in_order() -> None:
    disks = build().findall("devices/disk")
    assert [d.find("target").get("dev") for d in disks] == ["vda", "vdb"]
    first = disks[0]
    assert first.get("type") == "file"
    assert first.find("source").get("file") == ROOT.path
    assert first.find("driver").get("type") == "qcow2"
    assert first.find("target").get("bus") == "virtio"


def test_one_bridge_interface_per_vif() -> None:
    second = Vif(port_id="p2", mac_address="fa:16:3e:0a:0b:0c", bridge="brq2", tap_name="tapp2")
    interfaces = build(vifs=(VIF, second)).findall("devices/interface")
    assert len(interfaces) == 2
    first = interfaces[0]
    assert first.get("type") == "bridge"
    assert first.find("mac").get("address") == VIF.mac_address
    assert first.find("source").get("bridge") == "brq1234"
    assert first.find("target").get("dev") == "tap11111111-22"
    assert first.find("model").get("type") == "virtio"
    assert first.find("mtu").get("size") == "1450"
    assert interfaces[1].find("mtu") is None


def test_serial_console_goes_to_the_log_file() -> None:
    root = build()
    source = root.find("devices/serial/source")
    assert root.find("devices/serial").get("type") == "file"
    assert source is not None
    assert source.get("path") == "/srv/instances/x/console.log"


def test_vnc_graphics_with_autoport() -> None:
    graphics = build().find("devices/graphics")
    assert graphics is not None
    assert (graphics.get("type"), graphics.get("autoport"), graphics.get("listen")) == (
        "vnc",
        "yes",
        "127.0.0.1",
    )


def test_metadata_carries_name_and_metadata() -> None:
    block = build().find(f"metadata/{{{config.NAMESPACE}}}instance")
    assert block is not None
    assert block.findtext(f"{{{config.NAMESPACE}}}name") == "web-1"
    meta = block.find(f"{{{config.NAMESPACE}}}meta")
    assert meta is not None
    assert (meta.get("key"), meta.text) == ("role", "web")


def test_names_with_markup_are_escaped() -> None:
    root = build(name="<b>&'x'")
    assert root.findtext("title") == "<b>&'x'"


def test_interface_found_by_port_id() -> None:
    xml = ET.tostring(build(), encoding="unicode")
    found = config.find_interface(xml, VIF.port_id)
    assert found is not None
    assert ET.fromstring(found).find("mac").get("address") == VIF.mac_address
    assert config.find_interface(xml, "other") is None
    assert ET.fromstring(config.interface_xml(VIF)).find("alias").get("name") == (
        f"ua-port-{VIF.port_id}"
    )


def test_volume_disk_and_lookup_by_serial() -> None:
    connection = VolumeConnection(volume_id="vol-1", path="/srv/volumes/vol-1", read_only=True)
    disk = ET.fromstring(config.volume_disk_xml(connection, "vdc"))
    assert disk.get("type") == "file"
    assert disk.find("source").get("file") == "/srv/volumes/vol-1"
    assert disk.find("target").get("dev") == "vdc"
    assert disk.findtext("serial") == "vol-1"
    assert disk.find("readonly") is not None
    block = ET.fromstring(config.volume_disk_xml(VolumeConnection("v", "/dev/sdb"), "vdb"))
    assert block.get("type") == "block"
    assert block.find("source").get("dev") == "/dev/sdb"

    domain = build()
    domain.find("devices").append(disk)
    xml = ET.tostring(domain, encoding="unicode")
    assert config.find_volume_disk(xml, "vol-1") is not None
    assert config.find_volume_disk(xml, "vol-2") is None
    assert config.disk_targets(xml) == ["vda", "vdb", "vdc"]
    assert config.next_disk_target(xml) == "vdd"


def test_no_free_disk_name() -> None:
    targets = "".join(f"<disk><target dev='vd{c}'/></disk>" for c in "abcdefghijklmnopqrstuvwxyz")
    with pytest.raises(ValueError):
        config.next_disk_target(f"<domain><devices>{targets}</devices></domain>")


@pytest.mark.parametrize(
    ("graphics", "port"),
    [
        ("<graphics type='vnc' port='5901' autoport='yes'/>", 5901),
        ("<graphics type='vnc' port='-1' autoport='yes'/>", None),
        ("<graphics type='spice' port='5902'/>", None),
        ("", None),
    ],
)
def test_vnc_port_of_live_xml(graphics: str, port: int | None) -> None:
    assert config.vnc_port(f"<domain><devices>{graphics}</devices></domain>") == port
