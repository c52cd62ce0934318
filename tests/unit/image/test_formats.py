"""Tests of the streaming disk-image format inspector."""

from __future__ import annotations

import json
import random
import shutil
import struct
import subprocess
import tracemalloc
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

from nimbus import exception
from nimbus.image.formats import HEAD_SIZE, FormatInspector, ImageFormatError, Inspection
from nimbus.testing.services import services_required

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB

# -- building images by hand -------------------------------------------------


def _qcow2(
    virtual_size: int = GiB,
    *,
    version: int = 3,
    backing_offset: int = 0,
    crypt_method: int = 0,
    incompatible: int = 0,
) -> bytes:
    """Return a qcow2 header padded to its first 64 KiB cluster.

    Layout, big-endian: 0 magic ``QFI\\xfb``, 4 version u32,
    8 backing_file_offset u64, 16 backing_file_size u32, 20 cluster_bits u32,
    24 size u64 (the virtual size), 32 crypt_method u32, 36 l1_size u32,
    40 l1_table_offset u64, 48 refcount_table_offset u64,
    56 refcount_table_clusters u32, 60 nb_snapshots u32,
    64 snapshots_offset u64; version 3 goes on with 72 incompatible_features
    u64 (bit 2: external data file), 80 compatible_features u64,
    88 autoclear_features u64, 96 refcount_order u32, 100 header_length u32.
    """
    header = struct.pack(
        ">4sIQIIQIIQQIIQ",
        b"QFI\xfb",
        version,
        backing_offset,
        0,
        16,
        virtual_size,
        crypt_method,
        0,
        0,
        0,
        0,
        0,
        0,
    )
    assert len(header) == 72
    if version >= 3:
        header += struct.pack(">QQQII", incompatible, 0, 0, 4, 104)
    return header.ljust(64 * KiB, b"\0")


def _descriptor(
    create_type: str = "monolithicSparse",
    extent: str = 'RW 2097152 SPARSE "disk.vmdk"',
    extra: str = "",
) -> str:
    """Return a vmdk descriptor like the one qemu-img embeds."""
    return (
        "# Disk DescriptorFile\n"
        "version=1\n"
        "CID=1c40fb43\n"
        "parentCID=ffffffff\n"
        f'createType="{create_type}"\n'
        f"{extra}"
        "\n# Extent description\n"
        f"{extent}\n"
        "\n# The Disk Data Base\n#DDB\n\n"
        'ddb.virtualHWVersion = "4"\n'
        'ddb.adapterType = "ide"\n'
    )


def _vmdk(
    capacity_sectors: int = 2 * MiB,
    *,
    descriptor: str | bytes = _descriptor(),
    descriptor_sector: int = 1,
    descriptor_sectors: int = 20,
) -> bytes:
    """Return a sparse vmdk extent: its header and embedded descriptor.

    Header, little-endian, one 512-byte sector: 0 magic ``KDMV``,
    4 version u32, 8 flags u32, 12 capacity u64 (in sectors), 20 grain size
    u64 (sectors), 28 descriptor offset u64 (sectors), 36 descriptor size
    u64 (sectors), 44 number of grain table entries u32, 48 redundant grain
    directory offset u64, 56 grain directory offset u64, 64 overhead u64,
    72 unclean shutdown u8, 73 the line-end check characters ``\\n \\r\\n``,
    77 compression algorithm u16.  The descriptor text follows at its
    offset, padded with NULs to its size.
    """
    header = struct.pack(
        "<4sIIQQQQIQQQB4sH",
        b"KDMV",
        1,
        3,
        capacity_sectors,
        128,
        descriptor_sector,
        descriptor_sectors,
        512,
        0,
        21,
        128,
        0,
        b"\n \r\n",
        0,
    ).ljust(512, b"\0")
    body = bytearray(header)
    if descriptor_sector:
        text = descriptor.encode() if isinstance(descriptor, str) else descriptor
        start = descriptor_sector * 512
        body = body.ljust(start, b"\0") + text.ljust(descriptor_sectors * 512, b"\0")
    return bytes(body.ljust(64 * KiB, b"\0"))


def _vhd_footer(current_size: int, disk_type: int, *, data_offset: int = 0) -> bytes:
    """Return a 512-byte VHD footer.

    Layout, big-endian: 0 cookie ``conectix``, 8 features u32, 12 format
    version u32, 16 data offset u64 (all ones for a fixed disk), 24 time
    stamp u32, 28 creator application (4 chars), 32 creator version u32,
    36 creator host OS (4 chars), 40 original size u64, 48 current size u64
    (the virtual size), 56 geometry u32, 60 disk type u32 (2 fixed,
    3 dynamic, 4 differencing), 64 checksum u32 (one's complement of the
    byte sum), 68 unique id (16 bytes), 84 saved state u8.
    """
    if disk_type == 2:
        data_offset = 0xFFFFFFFFFFFFFFFF
    footer = bytearray(
        struct.pack(
            ">8sIIQI4sI4sQQIII16sB",
            b"conectix",
            2,
            0x00010000,
            data_offset,
            0,
            b"qem2",
            0x00050003,
            b"Wi2k",
            current_size,
            current_size,
            0,
            disk_type,
            0,
            bytes(range(16)),
            0,
        ).ljust(512, b"\0")
    )
    struct.pack_into(">I", footer, 64, ~sum(footer) & 0xFFFFFFFF)
    return bytes(footer)


def _vhd_fixed(guest: bytes) -> bytes:
    """Return a fixed VHD: the guest's bytes, then the footer."""
    return guest + _vhd_footer(len(guest), 2)


def _vhd_dynamic(virtual_size: int = GiB, disk_type: int = 3) -> bytes:
    """Return a dynamic VHD: footer copy, dynamic header, empty BAT, footer.

    The dynamic header (1 KiB at the data offset, 512) starts with
    ``cxsparse``; the block allocation table follows it.
    """
    footer = _vhd_footer(virtual_size, disk_type, data_offset=512)
    dynamic = struct.pack(
        ">8sQQIII", b"cxsparse", 0xFFFFFFFFFFFFFFFF, 1536, 0x00010000, 512, 2 * MiB
    ).ljust(1024, b"\0")
    bat = b"\xff" * 2048
    return footer + dynamic + bat + footer


def _guid(text: str) -> bytes:
    # VHDX stores GUIDs with their first three fields little-endian.
    return uuid.UUID(text).bytes_le


_METADATA_REGION = _guid("8b7ca206-4790-4b9a-b8fe-575f050f886e")
_BAT_REGION = _guid("2dc27766-f623-4200-9d64-115e9bfd4a08")
_FILE_PARAMETERS = _guid("caa16737-fa36-4d43-b3b6-33f0aa44e76b")
_VIRTUAL_DISK_SIZE = _guid("2fa54224-cd1b-4876-b211-5dbed83bf4b8")
_PARENT_LOCATOR = _guid("a8d35f2f-b30b-454d-abf7-d3d84834ab0c")


def _vhdx(
    virtual_size: int = GiB,
    *,
    metadata_offset: int = MiB,
    parent: bool = False,
    size_item_offset: int = 64 * KiB,
) -> bytes:
    """Return a VHDX with its header section and metadata region.

    0 ``vhdxfile`` (the file type identifier); 64 KiB and 128 KiB: headers
    (``head``, not read by the inspector); 192 KiB and 256 KiB: region
    tables, each ``regi``, checksum u32, entry count u32, reserved u32, then
    32-byte entries (GUID, file offset u64, length u32, required u32), all
    little-endian.  The metadata region starts with ``metadata``, reserved
    u16, entry count u16, 20 reserved bytes, then 32-byte entries (item GUID,
    offset from the region's start u32, length u32, flags u32, reserved
    u32); the virtual disk size item is a u64.
    """
    data = bytearray(metadata_offset + max(size_item_offset + 4 * KiB, 64 * KiB))
    data[0:8] = b"vhdxfile"
    for header in (64 * KiB, 128 * KiB):
        data[header : header + 4] = b"head"
    regions = [(_BAT_REGION, 2 * metadata_offset, MiB), (_METADATA_REGION, metadata_offset, MiB)]
    for table in (0x30000, 0x40000):
        struct.pack_into("<4sIII", data, table, b"regi", 0, len(regions), 0)
        for i, (guid, offset, length) in enumerate(regions):
            struct.pack_into("<16sQII", data, table + 16 + 32 * i, guid, offset, length, 1)
    items = [(_FILE_PARAMETERS, size_item_offset + 8, 8), (_VIRTUAL_DISK_SIZE, size_item_offset, 8)]
    if parent:
        items.append((_PARENT_LOCATOR, size_item_offset + 16, 32))
    struct.pack_into("<8sHH20x", data, metadata_offset, b"metadata", 0, len(items))
    for i, (guid, offset, length) in enumerate(items):
        entry = metadata_offset + 32 + 32 * i
        struct.pack_into("<16sIIII", data, entry, guid, offset, length, 4, 0)
    struct.pack_into("<Q", data, metadata_offset + size_item_offset, virtual_size)
    return bytes(data)


def _vdi(disk_size: int = GiB, *, image_type: int = 1, version: int = 0x00010001) -> bytes:
    """Return a VDI header and an empty block map.

    Layout, little-endian: 0 a 64-byte banner, 0x40 signature u32
    (0xbeda107f), 0x44 version u32 (1.1), 0x48 header size u32, 0x4c image
    type u32 (1 normal, 2 fixed, 3 undo, 4 differencing), 0x50 flags u32,
    0x54 description (256 bytes), 0x154 block map offset u32, 0x158 data
    offset u32, 0x15c geometry (four u32), 0x16c unused u32, 0x170 disk size
    u64 (the virtual size), 0x178 block size u32, 0x17c block extra data
    u32, 0x180 block count u32, 0x184 allocated blocks u32, then UUIDs.
    """
    header = bytearray(512)
    header[0:64] = b"<<< Oracle VM VirtualBox Disk Image >>>\n".ljust(64, b"\0")
    struct.pack_into("<IIII", header, 0x40, 0xBEDA107F, version, 0x180, image_type)
    struct.pack_into("<II", header, 0x154, 512, 4096)
    struct.pack_into("<QIIII", header, 0x170, disk_size, MiB, 0, disk_size // MiB, 0)
    return bytes(header) + b"\xff" * 3584


def _iso(blocks: int = 18, block_size: int = 2048, *, blocks_be: int | None = None) -> bytes:
    """Return an ISO 9660 image's system area and volume descriptors.

    32 KiB of system area, then 2 KiB volume descriptors from sector 16,
    each a type byte, ``CD001`` and version 1.  The primary one (type 1)
    holds at 80 the volume space size (in blocks) as u32 little-endian then
    big-endian, and at 128 the logical block size as u16 little-endian then
    big-endian.  A terminator (type 255) ends the set.
    """
    pvd = bytearray(2048)
    pvd[0:7] = b"\x01CD001\x01"
    struct.pack_into("<I", pvd, 80, blocks)
    struct.pack_into(">I", pvd, 84, blocks if blocks_be is None else blocks_be)
    struct.pack_into("<H", pvd, 128, block_size)
    struct.pack_into(">H", pvd, 130, block_size)
    terminator = b"\xffCD001\x01".ljust(2048, b"\0")
    return bytes(32 * KiB) + bytes(pvd) + terminator


# -- feeding -------------------------------------------------------------------


def _chunks(data: bytes, sizes: Iterable[int]) -> Iterable[bytes]:
    """Cut *data* into consecutive chunks of the given sizes, cycling them."""
    sizes = list(sizes)
    position = 0
    i = 0
    while position < len(data):
        size = sizes[i % len(sizes)]
        yield data[position : position + size]
        position += size
        i += 1


SPLITS = {
    "whole": lambda data: [data],
    "bytes": lambda data: _chunks(data, [1]),
    "sevens": lambda data: _chunks(data, [7]),
    "ragged": lambda data: _chunks(data, [1, 511, 513, 4093, 65537, 0, 3]),
}


def _inspect(data: bytes, declared: str | None, split: Callable = SPLITS["whole"]) -> Inspection:
    inspector = FormatInspector(declared)
    for chunk in split(data):
        inspector.feed(chunk)
    return inspector.finish(len(data))


def _outcome(data: bytes, declared: str | None, split: Callable) -> Inspection | str:
    try:
        return _inspect(data, declared, split)
    except ImageFormatError as ex:
        return f"error: {ex}"


def _error(data: bytes, declared: str | None) -> ImageFormatError:
    with pytest.raises(ImageFormatError) as info:
        _inspect(data, declared)
    return info.value


# -- detection and virtual sizes ---------------------------------------------

SAMPLES = {
    "qcow2": (_qcow2(5 * GiB), Inspection("qcow2", 5 * GiB)),
    "qcow2-v2": (_qcow2(3 * GiB, version=2), Inspection("qcow2", 3 * GiB)),
    "vmdk": (_vmdk(4096), Inspection("vmdk", 4096 * 512)),
    "vmdk-stream": (
        _vmdk(2048, descriptor=_descriptor("streamOptimized")),
        Inspection("vmdk", MiB),
    ),
    "vhd-fixed": (_vhd_fixed(bytes(64 * KiB)), Inspection("vhd", 64 * KiB)),
    "vhd-dynamic": (_vhd_dynamic(7 * GiB), Inspection("vhd", 7 * GiB)),
    "vhdx": (_vhdx(9 * GiB), Inspection("vhdx", 9 * GiB)),
    "vdi": (_vdi(2 * GiB), Inspection("vdi", 2 * GiB)),
    "vdi-fixed": (_vdi(MiB, image_type=2), Inspection("vdi", MiB)),
    "iso": (_iso(100, 2048), Inspection("iso", 100 * 2048)),
}


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_formats_are_detected_whatever_the_chunks(name: str) -> None:
    data, expected = SAMPLES[name]
    for split_name, split in SPLITS.items():
        assert _outcome(data, expected.format, split) == expected, split_name
    assert _outcome(data, None, SPLITS["ragged"]) == expected


@pytest.mark.parametrize("declared", ["ami", "ari", "aki", "ploop", None])
def test_formats_without_checks_report_what_is_detected(declared: str | None) -> None:
    assert _inspect(_qcow2(GiB), declared) == Inspection("qcow2", GiB)
    assert _inspect(b"kernel image" * 100, declared) == Inspection(None, None)


def test_raw_data_has_its_size_as_virtual_size() -> None:
    data = b"\xeb\x63\x90" + bytes(1021)
    for split in SPLITS.values():
        assert _outcome(data, "raw", split) == Inspection(None, 1024)


def test_errors_are_identical_whatever_the_chunks() -> None:
    data = _qcow2(GiB, backing_offset=0x200)
    outcomes = {split_name: _outcome(data, "qcow2", split) for split_name, split in SPLITS.items()}
    assert len(set(outcomes.values())) == 1
    assert outcomes["whole"].startswith("error: ")


def test_the_size_given_to_finish_is_the_raw_virtual_size() -> None:
    inspector = FormatInspector("raw")
    chunk = bytes(64 * KiB)
    for _ in range(40):
        inspector.feed(chunk)
    assert inspector.finish(40 * 64 * KiB) == Inspection(None, 40 * 64 * KiB)


# -- declared versus detected ------------------------------------------------


@pytest.mark.parametrize("declared", ["qcow2", "vmdk", "vhd", "vhdx", "vdi", "iso"])
def test_declared_formats_must_match_raw_data(declared: str) -> None:
    error = _error(b"just some raw bytes" * 100, declared)
    assert error.kwargs["field"] == "disk_format"
    assert f"The data is not in the declared disk_format '{declared}' (detected: raw)." in str(
        error
    )


@pytest.mark.parametrize(
    ("declared", "data", "detected"),
    [
        ("qcow2", _vmdk(), "vmdk"),
        ("vmdk", _qcow2(), "qcow2"),
        ("vhd", _vhdx(), "vhdx"),
        ("vhdx", _vhd_dynamic(), "vhd"),
        ("vdi", _qcow2(), "qcow2"),
        ("iso", _vdi(), "vdi"),
        ("qcow2", _iso(), "iso"),
    ],
)
def test_declared_formats_must_match_other_formats(
    declared: str, data: bytes, detected: str
) -> None:
    error = _error(data, declared)
    assert error.kwargs["field"] == "disk_format"
    assert f"'{declared}' (detected: {detected})" in str(error)


@pytest.mark.parametrize("name", ["qcow2", "vmdk", "vhd-fixed", "vhd-dynamic", "vhdx", "vdi"])
def test_raw_must_not_hide_another_format(name: str) -> None:
    data, expected = SAMPLES[name]
    error = _error(data, "raw")
    assert error.kwargs["field"] == "disk_format"
    assert f"'raw' (detected: {expected.format})" in str(error)


def test_iso_data_may_be_declared_raw() -> None:
    assert _inspect(_iso(100), "raw") == Inspection("iso", 100 * 2048)


def test_iso_sizes_that_cannot_be_read_fall_back_to_the_data_size() -> None:
    cut = _iso()[: 0x8000 + 100]  # the PVD stops before its block size
    assert _inspect(cut, "iso") == Inspection("iso", len(cut))
    damaged = _iso(100, blocks_be=99)  # the two byte orders disagree
    assert _inspect(damaged, "raw") == Inspection("iso", len(damaged))


def test_iso_primary_descriptor_may_follow_a_boot_record() -> None:
    data = bytearray(_iso(50))
    boot_record = b"\x00CD001\x01".ljust(2048, b"\0")
    data[0x8000:0x8000] = boot_record
    assert _inspect(bytes(data), "iso") == Inspection("iso", 50 * 2048)


@pytest.mark.parametrize("declared", ["raw", "qcow2", "vmdk", "iso", "ami", None])
def test_empty_data_is_accepted(declared: str | None) -> None:
    expected = Inspection(None, 0 if declared == "raw" else None)
    assert _inspect(b"", declared) == expected
    assert FormatInspector(declared).finish(0) == expected


def test_errors_are_validation_errors() -> None:
    error = _error(_qcow2(), "raw")
    assert isinstance(error, exception.ValidationError)
    assert isinstance(error, exception.Invalid)
    assert str(error).startswith("Invalid input for field 'disk_format': ")


def test_more_than_one_signature_is_refused() -> None:
    data = bytearray(_iso())
    data[:104] = _qcow2()[:104]  # a qcow2 header in the ISO's system area
    error = _error(bytes(data[: 36 * KiB]), "iso")
    assert error.kwargs["field"] == "data"
    assert "more than one disk format (iso, qcow2)" in str(error)


def test_a_fixed_vhd_may_hold_an_iso() -> None:
    iso = _iso(20)
    assert _inspect(_vhd_fixed(iso), "vhd") == Inspection("vhd", len(iso))


def test_a_fixed_vhd_must_not_hold_a_qcow2() -> None:
    error = _error(_vhd_fixed(_qcow2()), "vhd")
    assert "more than one disk format (qcow2, vhd)" in str(error)


# -- qcow2 safety ----------------------------------------------------------------


@pytest.mark.parametrize("declared", ["qcow2", "raw", None])
def test_qcow2_backing_files_are_refused(declared: str | None) -> None:
    error = _error(_qcow2(backing_offset=0x200), declared)
    assert error.kwargs["field"] == "data"
    assert "backing file" in str(error)


def test_qcow2_v2_backing_files_are_refused() -> None:
    assert "backing file" in str(_error(_qcow2(version=2, backing_offset=0x48), "qcow2"))


def test_qcow2_external_data_files_are_refused() -> None:
    error = _error(_qcow2(incompatible=1 << 2), "qcow2")
    assert "external data file" in str(error)


def test_qcow2_unknown_incompatible_features_are_refused() -> None:
    assert "unknown incompatible features (0x20)" in str(_error(_qcow2(incompatible=1 << 5), None))


def test_qcow2_known_features_are_accepted() -> None:
    # dirty, corrupt, compression type and extended L2 entries name no file
    data = _qcow2(GiB, incompatible=0b11011)
    assert _inspect(data, "qcow2") == Inspection("qcow2", GiB)


def test_encrypted_qcow2_is_accepted() -> None:
    assert _inspect(_qcow2(GiB, crypt_method=2), "qcow2") == Inspection("qcow2", GiB)


@pytest.mark.parametrize("version", [0, 1, 4, 0xFFFFFFFF])
def test_other_qcow_versions_are_refused(version: int) -> None:
    error = _error(_qcow2(version=version), "raw")
    assert f"QCOW version {version} is not supported" in str(error)


def test_short_qcow2_header_is_not_qcow2() -> None:
    short = _qcow2()[:100]  # version 3 needs 104 bytes
    assert _inspect(short, "raw") == Inspection(None, 100)
    assert "(detected: raw)" in str(_error(short, "qcow2"))


# -- vmdk safety -------------------------------------------------------------------


@pytest.mark.parametrize(
    "create_type", ["monolithicFlat", "twoGbMaxExtentSparse", "vmfs", "vmfsSparse", ""]
)
def test_vmdk_types_with_external_extents_are_refused(create_type: str) -> None:
    data = _vmdk(descriptor=_descriptor(create_type, 'RW 2097152 FLAT "disk-flat.vmdk" 0'))
    error = _error(data, "vmdk")
    assert error.kwargs["field"] == "data"
    assert f"createType '{create_type}'" in str(error)


def test_vmdk_extent_paths_are_refused() -> None:
    data = _vmdk(descriptor=_descriptor(extent='RW 2097152 SPARSE "/etc/shadow"'))
    assert "extent file by path" in str(_error(data, "vmdk"))


@pytest.mark.parametrize("where", ["header", "comment"])
def test_vmdk_parents_are_refused(where: str) -> None:
    if where == "header":
        extra = 'parentFileNameHint="base.vmdk"\n'
    else:
        extra = '# parentFileNameHint="/var/lib/nova/base"\n'
    data = _vmdk(descriptor=_descriptor(extra=extra))
    assert "parent disk" in str(_error(data, "vmdk"))


def test_vmdk_parent_hint_is_found_where_qemu_looks() -> None:
    # qemu reads the parent hint after the first sector, whatever the header
    # says about the descriptor's place.
    data = bytearray(_vmdk(descriptor=_descriptor(), descriptor_sector=40))
    hint = b'parentFileNameHint="/etc/passwd"\n'
    data[512 : 512 + len(hint)] = hint
    assert "parent disk" in str(_error(bytes(data), "vmdk"))


def test_vmdk_without_capacity_is_refused() -> None:
    # With no capacity qemu follows the descriptor's extents as files.
    assert "no capacity" in str(_error(_vmdk(0), "vmdk"))


def _moved_descriptor(data: bytes, sector: int) -> bytes:
    """Point the vmdk header's descriptor offset at *sector*, moving nothing."""
    moved = bytearray(data)
    struct.pack_into("<Q", moved, 28, sector)
    return bytes(moved)


def test_vmdk_descriptor_must_be_where_it_can_be_checked() -> None:
    beyond = _moved_descriptor(_vmdk(), 1000)  # 512000 bytes, past the 64 KiB built
    assert "beyond the end of the data" in str(_error(beyond, "vmdk"))
    far = _moved_descriptor(_vmdk() + bytes(HEAD_SIZE), HEAD_SIZE // 512 + 1)
    assert "too far into the data" in str(_error(far, "vmdk"))
    endless = _vmdk(descriptor=b"createType=monolithicSparse " * (HEAD_SIZE // 16))
    assert "too long to be checked" in str(_error(endless, "vmdk"))


def test_vmdk_descriptor_must_name_a_create_type() -> None:
    data = _vmdk(descriptor="# Disk DescriptorFile\nversion=1\n")
    assert "no createType" in str(_error(data, "vmdk"))


def test_vmdk_without_embedded_descriptor_is_accepted() -> None:
    assert _inspect(
        _vmdk(64, descriptor=b"", descriptor_sector=0, descriptor_sectors=0), "vmdk"
    ) == (Inspection("vmdk", 64 * 512))


@pytest.mark.parametrize("declared", ["vmdk", "raw", None])
def test_vmdk_descriptor_files_are_refused(declared: str | None) -> None:
    text = _descriptor("monolithicFlat", 'RW 2097152 FLAT "/dev/sda" 0').encode()
    error = _error(text, declared)
    assert error.kwargs["field"] == "data"
    assert "VMDK descriptor (createType 'monolithicFlat')" in str(error)


def test_vmdk_descriptor_files_are_found_as_qemu_probes_them() -> None:
    text = b'   \r\n# a comment\nversion=1\nRW 10 FLAT "/etc/passwd" 0\n'
    assert "createType 'unknown'" in str(_error(text, "raw"))


def test_old_vmware_sparse_extents_are_vmdk() -> None:
    header = struct.pack("<4sIII", b"COWD", 1, 3, 8192).ljust(2048, b"\0")
    assert _inspect(header, None) == Inspection("vmdk", 8192 * 512)
    assert "(detected: vmdk)" in str(_error(header, "raw"))


# -- vhd, vhdx and vdi safety --------------------------------------------------


def test_differencing_vhd_is_refused() -> None:
    error = _error(_vhd_dynamic(disk_type=4), "vhd")
    assert "differencing disk" in str(error)


def test_unknown_vhd_disk_type_is_refused() -> None:
    assert "VHD disk type 9 is not supported" in str(_error(_vhd_dynamic(disk_type=9), "vhd"))


def test_differencing_vhdx_is_refused() -> None:
    assert "differencing disk" in str(_error(_vhdx(parent=True), "vhdx"))


def test_vhdx_metadata_far_into_the_data_is_read() -> None:
    data = _vhdx(3 * GiB, metadata_offset=3 * MiB)
    for split_name in ("whole", "ragged"):
        assert _outcome(data, "vhdx", SPLITS[split_name]) == Inspection("vhdx", 3 * GiB)
    big_chunks = _chunks(data, [5 * MiB])
    inspector = FormatInspector("vhdx")
    for chunk in big_chunks:
        inspector.feed(chunk)
    assert inspector.finish(len(data)) == Inspection("vhdx", 3 * GiB)


def test_vhdx_size_item_inside_the_metadata_table_is_read() -> None:
    data = _vhdx(GiB, metadata_offset=2 * MiB, size_item_offset=4 * KiB)
    assert _outcome(data, "vhdx", SPLITS["ragged"]) == Inspection("vhdx", GiB)


def test_vhdx_with_metadata_missing_has_no_size() -> None:
    data = _vhdx(GiB, metadata_offset=4 * MiB)[: 2 * MiB]
    assert _inspect(data, "vhdx") == Inspection("vhdx", None)


def test_vhdx_without_region_tables_has_no_size() -> None:
    data = bytearray(_vhdx())
    data[0x30000:0x30004] = data[0x40000:0x40004] = b"xxxx"
    assert _inspect(bytes(data), "vhdx") == Inspection("vhdx", None)


def test_vhdx_second_region_table_is_used_when_the_first_is_damaged() -> None:
    data = bytearray(_vhdx(GiB))
    data[0x30000:0x30004] = b"xxxx"
    assert _inspect(bytes(data), "vhdx") == Inspection("vhdx", GiB)


def test_short_vhdx_is_not_vhdx() -> None:
    data = _vhdx()[:0x40000]
    assert _inspect(data, "raw") == Inspection(None, len(data))


@pytest.mark.parametrize("image_type", [3, 4])
def test_vdi_images_that_are_not_standalone_are_refused(image_type: int) -> None:
    error = _error(_vdi(image_type=image_type), "vdi")
    assert f"VDI image type {image_type} is not a standalone disk" in str(error)


def test_old_vdi_headers_are_refused() -> None:
    assert "VDI header version 1.0 is not supported" in str(_error(_vdi(version=0x10000), "vdi"))


# -- robustness --------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_truncated_images_never_fail_unexpectedly(name: str) -> None:
    data, expected = SAMPLES[name]
    lengths = sorted({*range(0, 600, 7), *range(0x7F00, 0x8100, 13), len(data) - 1})
    for length in lengths:
        cut = data[:length]
        for declared in (expected.format, "raw", None):
            outcome = _outcome(cut, declared, SPLITS["whole"])
            assert isinstance(outcome, (Inspection, str))


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_mangled_headers_never_fail_unexpectedly(name: str) -> None:
    data, expected = SAMPLES[name]
    rng = random.Random(name)
    interesting = [0, 4, 8, 12, 24, 28, 36, 48, 60, 72, 0x40, 0x44, 0x4C, 0x170, 0x8000]
    interesting += [0x30008, 0x30010, 0x30020, 0x30028, 0x3002C]
    for _ in range(150):
        mangled = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            offset = rng.choice(interesting) + rng.randint(0, 15)
            if offset < len(mangled):
                mangled[offset] = rng.randint(0, 255)
        if rng.random() < 0.3:
            del mangled[rng.randint(0, len(mangled)) :]
        for declared in (expected.format, "raw", None):
            outcome = _outcome(bytes(mangled), declared, SPLITS["whole"])
            assert isinstance(outcome, (Inspection, str))


def test_random_data_is_raw() -> None:
    rng = random.Random(1)
    data = rng.randbytes(3 * MiB)
    assert _inspect(data, "raw") == Inspection(None, len(data))


# -- bounded memory ----------------------------------------------------------------


def _traced_feed(inspector: FormatInspector, chunks: Iterable[bytes]) -> tuple[int, int]:
    """Feed *chunks*; return the most bytes retained and the allocation peak."""
    most = 0
    tracemalloc.start()
    try:
        for chunk in chunks:
            inspector.feed(chunk)
            most = max(most, inspector.retained())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return most, peak


def test_memory_stays_bounded_for_a_long_upload() -> None:
    chunk = bytes(range(256)) * (4 * KiB)  # 1 MiB, the same object every time
    inspector = FormatInspector("raw")
    most, peak = _traced_feed(inspector, [chunk] * 64)
    assert most <= HEAD_SIZE + 512
    # The head is the one big allocation: chunks are not copied.
    assert peak < HEAD_SIZE + 256 * KiB
    assert inspector.finish(64 * MiB) == Inspection(None, 64 * MiB)


def test_memory_stays_bounded_for_a_long_vhdx_upload() -> None:
    # The metadata region lies 8 MiB in, so the inspector must collect it
    # as it streams past; the chunks are cut before tracing starts.
    image = _vhdx(GiB, metadata_offset=8 * MiB)
    chunks = list(_chunks(image, [MiB])) + [bytes(MiB)] * 48
    inspector = FormatInspector("vhdx")
    most, peak = _traced_feed(inspector, chunks)
    assert most <= HEAD_SIZE + 512 + 64 * KiB + 8
    assert peak < HEAD_SIZE + 256 * KiB
    assert inspector.finish(len(image) + 48 * MiB) == Inspection("vhdx", GiB)


# -- real images from qemu-img -----------------------------------------------------


@pytest.fixture
def qemu_img() -> str:
    """Return the path of qemu-img; skip without it, or fail when it is required."""
    path = shutil.which("qemu-img")
    if path is None:
        message = "qemu-img needed (install qemu-utils): not found on PATH"
        if services_required():
            pytest.fail(message + " (NIMBUS_REQUIRE_SERVICES is set)")
        pytest.skip(message)
    return path


def _create(qemu_img: str, path: Path, fmt: str, size: str, *options: str) -> Path:
    subprocess.run(
        [qemu_img, "create", "-q", "-f", fmt, *options, str(path), size],
        check=True,
        capture_output=True,
    )
    return path


def _qemu_virtual_size(qemu_img: str, path: Path, fmt: str) -> int:
    # -f keeps qemu-img from probing the format.
    out = subprocess.run(
        [qemu_img, "info", "--output=json", "-f", fmt, str(path)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out)["virtual-size"]


def _inspect_file(path: Path, declared: str | None, chunk_size: int = 64 * KiB) -> Inspection:
    inspector = FormatInspector(declared)
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(chunk_size):
            inspector.feed(chunk)
            size += len(chunk)
    return inspector.finish(size)


@pytest.mark.parametrize(
    ("fmt", "declared", "options"),
    [
        ("qcow2", "qcow2", ()),
        ("qcow2", "qcow2", ("-o", "compat=0.10")),
        ("vmdk", "vmdk", ()),
        ("vmdk", "vmdk", ("-o", "subformat=streamOptimized")),
        ("vhdx", "vhdx", ()),
        ("vdi", "vdi", ()),
    ],
)
def test_qemu_images_agree_with_qemu_img(
    qemu_img: str, tmp_path: Path, fmt: str, declared: str, options: tuple[str, ...]
) -> None:
    path = _create(qemu_img, tmp_path / f"disk.{fmt}", fmt, "1G", *options)
    expected = _qemu_virtual_size(qemu_img, path, fmt)
    assert expected == GiB
    assert _inspect_file(path, declared) == Inspection(declared, expected)
    assert _inspect_file(path, declared, chunk_size=4093) == Inspection(declared, expected)
    with pytest.raises(ImageFormatError):
        _inspect_file(path, "raw")


@pytest.mark.parametrize(
    ("fmt", "options"),
    [("vhdx", ("-o", "subformat=fixed")), ("vdi", ("-o", "static=on"))],
)
def test_qemu_fixed_images_agree_with_qemu_img(
    qemu_img: str, tmp_path: Path, fmt: str, options: tuple[str, ...]
) -> None:
    path = _create(qemu_img, tmp_path / f"disk.{fmt}", fmt, "64M", *options)
    expected = _qemu_virtual_size(qemu_img, path, fmt)
    assert _inspect_file(path, fmt, chunk_size=MiB) == Inspection(fmt, expected)


@pytest.mark.parametrize(("options", "size"), [((), "1G"), (("-o", "subformat=fixed"), "64M")])
def test_qemu_vhd_images_match_their_footer(
    qemu_img: str, tmp_path: Path, options: tuple[str, ...], size: str
) -> None:
    """The inspector reports the footer's current size.

    qemu-img rounds a vpc image's size up to a whole CHS geometry and writes
    that rounded size into the footer, so for its own images ``qemu-img
    info`` agrees with the footer (1 GiB becomes 1,073,995,776 bytes).  For
    images made by Virtual PC, qemu trusts the geometry rather than the
    footer, and the two may then differ by a few sectors.
    """
    path = _create(qemu_img, tmp_path / "disk.vhd", "vpc", size, *options)
    with path.open("rb") as f:
        f.seek(-512, 2)
        footer = f.read()
    assert footer.startswith(b"conectix")
    (current_size,) = struct.unpack_from(">Q", footer, 48)
    assert _inspect_file(path, "vhd", chunk_size=MiB) == Inspection("vhd", current_size)
    assert _qemu_virtual_size(qemu_img, path, "vpc") == current_size
    with pytest.raises(ImageFormatError):
        _inspect_file(path, "raw", chunk_size=MiB)


def test_qemu_qcow2_with_backing_file_is_refused(qemu_img: str, tmp_path: Path) -> None:
    base = _create(qemu_img, tmp_path / "base.raw", "raw", "1M")
    path = _create(qemu_img, tmp_path / "disk.qcow2", "qcow2", "1G", "-b", str(base), "-F", "raw")
    for declared in ("qcow2", "raw", None):
        with pytest.raises(ImageFormatError, match="backing file"):
            _inspect_file(path, declared)


def test_qemu_qcow2_with_data_file_is_refused(qemu_img: str, tmp_path: Path) -> None:
    data_file = tmp_path / "disk.data"
    path = _create(qemu_img, tmp_path / "disk.qcow2", "qcow2", "1G", "-o", f"data_file={data_file}")
    with pytest.raises(ImageFormatError, match="external data file"):
        _inspect_file(path, "qcow2")


def test_qemu_encrypted_qcow2_is_accepted(qemu_img: str, tmp_path: Path) -> None:
    # The legacy AES format (crypt_method 1) is made instantly; a LUKS one
    # (crypt_method 2, built by hand above) makes qemu-img time its key
    # derivation for seconds, and fail now and then on a busy machine.
    path = _create(
        qemu_img,
        tmp_path / "disk.qcow2",
        "qcow2",
        "1G",
        "--object",
        "secret,id=sec0,data=not-a-real-secret",
        "-o",
        "encrypt.format=aes,encrypt.key-secret=sec0",
    )
    assert _inspect_file(path, "qcow2") == Inspection("qcow2", GiB)


def test_qemu_flat_vmdk_descriptor_is_refused(qemu_img: str, tmp_path: Path) -> None:
    path = _create(qemu_img, tmp_path / "disk.vmdk", "vmdk", "1M", "-o", "subformat=monolithicFlat")
    assert (tmp_path / "disk-flat.vmdk").exists()
    with pytest.raises(ImageFormatError, match="createType 'monolithicFlat'"):
        _inspect_file(path, "vmdk")
