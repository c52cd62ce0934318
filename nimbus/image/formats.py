"""Inspect disk-image data while an upload streams through the image service.

A client declares an image's ``disk_format``, but the bytes are what a
hypervisor host later opens.  Data that is secretly a qcow2 or vmdk (or that
names other files on the host: a qcow2 backing file or external data file,
a vmdk extent or parent, a differencing vhd) can make ``qemu-img`` or a guest
read host files.  Glance closed that hole (CVE-2024-32498) by inspecting the
data on upload; this module does the same for nimbus.

:class:`FormatInspector` is fed every chunk in order and keeps only a bounded
amount: the first :data:`HEAD_SIZE` bytes, the last 512 bytes (where a fixed
VHD keeps its footer), and, for a VHDX, at most 64 KiB of its metadata table
wherever the file puts it.  Nothing is judged until
:meth:`FormatInspector.finish`, which detects the format by signature, checks
it is safe, compares it with the declared format and reports the guest disk's
virtual size.

Vocabulary: the *declared* format is the image's ``disk_format``; the
*detected* format is what the signatures say (``None`` when none matched,
which is how raw data looks); the *virtual size* is the size of the disk the
guest sees, in bytes.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import struct
import uuid
from collections.abc import Callable

from nimbus import exception

__all__ = ["HEAD_SIZE", "FormatInspector", "ImageFormatError", "Inspection"]

#: How many bytes from the start of the data the inspector keeps.
HEAD_SIZE = 1 << 20

_SECTOR = 512
_TAIL_SIZE = 512

#: Declared formats the data must match exactly.
_CHECKED_FORMATS = frozenset({"qcow2", "vmdk", "vhd", "vhdx", "vdi", "iso"})
#: Detected formats that data declared ``raw`` must not be in: a host that
#: probes the format would interpret them instead of handing them to the guest.
_NOT_RAW = frozenset({"qcow2", "vmdk", "vhd", "vhdx", "vdi"})

# qcow2 (big-endian): magic, version, backing_file_offset at 8, size at 24,
# crypt_method at 32; version 3 adds incompatible_features at 72.
_QCOW2_MAGIC = b"QFI\xfb"
_QCOW2_V2_HEADER = 72
_QCOW2_V3_HEADER = 104
_QCOW2_DATA_FILE = 1 << 2
#: Incompatible-feature bits qemu knows: dirty, corrupt, external data file,
#: compression type and extended L2 entries.
_QCOW2_KNOWN_INCOMPATIBLE = 0x1F

# vmdk: a sparse extent starts with "KDMV" (an old VMware 3 one with "COWD");
# a descriptor file is plain text.
_VMDK4_MAGIC = b"KDMV"
_VMDK3_MAGIC = b"COWD"
_VMDK_SAFE_TYPES = frozenset({b"monolithicsparse", b"streamoptimized"})
#: qemu looks for a parent name in the 10 KiB after the first sector of any
#: sparse vmdk, whatever the header says about the descriptor.
_VMDK_PARENT_SCAN = (_SECTOR, 20 * _SECTOR)
_VMDK_PARENT_HINT = b"parentfilenamehint"
_VMDK_TEXT_PROBE = 64 * 1024
_VMDK_TEXT = re.compile(
    rb"\A(?:[ \t]*(?:#[^\n]*)?\r?\n)*[ \t]*version[ \t]*=[ \t]*\"?[123]\b", re.IGNORECASE
)
_VMDK_CREATE_TYPE = re.compile(
    rb"^[ \t]*createType[ \t]*=[ \t]*\"?([^\"\r\n]*)", re.IGNORECASE | re.MULTILINE
)
_VMDK_EXTENT = re.compile(
    rb"^[ \t]*(?:rw|rdonly|noaccess)[ \t]+\d+[ \t]+\w+([^\r\n]*)", re.IGNORECASE | re.MULTILINE
)

# vhd: a 512-byte footer starting with "conectix" (big-endian fields);
# current size at 48, disk type at 60.
_VHD_COOKIE = b"conectix"
_VHD_FIXED = 2
_VHD_DYNAMIC = 3
_VHD_DIFFERENCING = 4

# vhdx: "vhdxfile" at 0, region tables at 192 KiB and 256 KiB, a metadata
# region somewhere after the first MiB (little-endian fields, mixed-endian
# GUIDs).
_VHDX_SIGNATURE = b"vhdxfile"
_VHDX_REGION_TABLES = (0x30000, 0x40000)
_VHDX_TABLE_SIZE = 64 * 1024
_VHDX_MAX_ENTRIES = 2047
#: The inspector reads the region tables once it holds this much.
_VHDX_MIN_SIZE = _VHDX_REGION_TABLES[-1] + _VHDX_TABLE_SIZE
_VHDX_METADATA_REGION = uuid.UUID("8b7ca206-4790-4b9a-b8fe-575f050f886e").bytes_le
_VHDX_VIRTUAL_DISK_SIZE = uuid.UUID("2fa54224-cd1b-4876-b211-5dbed83bf4b8").bytes_le
_VHDX_PARENT_LOCATOR = uuid.UUID("a8d35f2f-b30b-454d-abf7-d3d84834ab0c").bytes_le

# vdi (little-endian): signature at 0x40, version at 0x44, image type at
# 0x4c, disk size at 0x170, in a 512-byte header.
_VDI_SIGNATURE = 0xBEDA107F
_VDI_VERSION_1_1 = 0x00010001
_VDI_STANDALONE_TYPES = frozenset({1, 2})  # normal (dynamic) and fixed

# iso: volume descriptors of 2 KiB from sector 16, "CD001" after the type
# byte; the primary one (type 1) holds both-endian sizes.
_ISO_DESCRIPTORS = 0x8000
_ISO_DESCRIPTOR_SIZE = 2048
_ISO_MAX_DESCRIPTORS = 32
_ISO_MAGIC = b"CD001"


class ImageFormatError(exception.ValidationError):
    """The image data is unsafe or not in its declared disk format."""


@dataclasses.dataclass(frozen=True)
class Inspection:
    """What the inspector found in an image's data.

    :param format: the detected format (``qcow2``, ``vmdk``, ``vhd``,
        ``vhdx``, ``vdi`` or ``iso``), or ``None`` for unrecognised or raw
        data.
    :param virtual_size: the size of the guest disk in bytes, or ``None``
        when it is unknown.
    """

    format: str | None
    virtual_size: int | None


@dataclasses.dataclass(frozen=True)
class _Found:
    format: str
    virtual_size: int | None
    #: Why the data must be refused, or ``None`` when it is safe.
    unsafe: str | None = None
    #: The guest disk starts at byte 0 (a fixed VHD), so a signature found
    #: there belongs to the guest, not to the container.
    guest_at_start: bool = False


class _Window:
    """A byte range the inspector collects as the stream passes it."""

    __slots__ = ("data", "length", "on_full", "start")

    def __init__(self, start: int, length: int, on_full: Callable[[bytes], None]) -> None:
        self.start = start
        self.length = length
        self.on_full = on_full
        self.data = bytearray()


class FormatInspector:
    """Detect and check the format of image data fed to it in chunks.

    One inspector serves one upload: call :meth:`feed` with every chunk in
    order, then :meth:`finish` once.  The inspector holds at most
    :data:`HEAD_SIZE` bytes plus about 65 KiB, whatever the upload's size,
    and does constant work per chunk once the head is full.

    :param disk_format: the ``disk_format`` the image declares, or ``None``.
    """

    def __init__(self, disk_format: str | None) -> None:
        self.disk_format = disk_format
        self._head = bytearray()
        self._tail = b""
        self._fed = 0
        self._windows: list[_Window] = []
        self._vhdx_read = False
        self._vhdx_size: int | None = None
        self._vhdx_unsafe: str | None = None

    def feed(self, chunk: bytes | memoryview) -> None:
        """Take the next chunk of the image data.

        :param chunk: the bytes that follow those fed before.
        """
        length = len(chunk)
        if not length:
            return
        start = self._fed
        self._fed = start + length
        room = HEAD_SIZE - len(self._head)
        if room > 0:
            self._head += chunk[:room]
        if length >= _TAIL_SIZE:
            self._tail = bytes(chunk[-_TAIL_SIZE:])
        else:
            self._tail = (self._tail + bytes(chunk))[-_TAIL_SIZE:]
        if not self._vhdx_read and len(self._head) >= _VHDX_MIN_SIZE:
            self._vhdx_read = True
            if self._head.startswith(_VHDX_SIGNATURE):
                self._read_vhdx_regions()
        if self._windows:
            self._fill_windows(chunk, start)

    def retained(self) -> int:
        """Return how many bytes of the data the inspector holds."""
        return len(self._head) + len(self._tail) + sum(len(w.data) for w in self._windows)

    def finish(self, size: int) -> Inspection:
        """Check the data fed and describe it.

        :param size: the total number of bytes of the image, as the caller
            counted them (the sum of the chunks' lengths).
        :returns: the detected format and the guest disk's virtual size;
            for raw data declared ``raw``, the virtual size is *size*.
        :raises ImageFormatError: (a :class:`~nimbus.exception.ValidationError`)
            with ``field="data"`` when the data is unsafe or ambiguous, or
            ``field="disk_format"`` when it is not in the declared format.
        """
        declared = self.disk_format
        if size == 0:
            # An empty image is allowed, whatever it declares.
            return Inspection(format=None, virtual_size=0 if declared == "raw" else None)
        found = self._detect(size)
        if found is not None and found.unsafe is not None:
            raise ImageFormatError(field="data", reason=found.unsafe)
        detected = found.format if found is not None else None
        if (declared in _CHECKED_FORMATS and detected != declared) or (
            declared == "raw" and detected in _NOT_RAW
        ):
            raise ImageFormatError(
                field="disk_format",
                reason=(
                    f"The data is not in the declared disk_format '{declared}' "
                    f"(detected: {detected or 'raw'})."
                ),
            )
        if found is None:
            return Inspection(format=None, virtual_size=size if declared == "raw" else None)
        return Inspection(format=found.format, virtual_size=found.virtual_size)

    def _detect(self, size: int) -> _Found | None:
        head = bytes(self._head)
        candidates = [
            found
            for found in (
                _inspect_qcow2(head),
                _inspect_vmdk(head, size),
                self._inspect_vhdx(head),
                _inspect_vdi(head),
                _inspect_iso(head, size),
                _inspect_vhd(head, self._tail),
            )
            if found is not None
        ]
        if len(candidates) > 1:
            # A fixed VHD of an ISO image is an ISO inside a VHD; any other
            # pair is data a host could read either way, which is unsafe.
            containers = [c for c in candidates if c.format != "iso"]
            if len(containers) == 1 and containers[0].guest_at_start:
                return containers[0]
            names = ", ".join(sorted(c.format for c in candidates))
            raise ImageFormatError(
                field="data", reason=f"The data matches more than one disk format ({names})."
            )
        return candidates[0] if candidates else None

    def _fill_windows(self, chunk: bytes | memoryview, chunk_start: int) -> None:
        chunk_end = chunk_start + len(chunk)
        i = 0
        # A full window's callback may open another, which this loop then
        # fills from the same chunk.
        while i < len(self._windows):
            window = self._windows[i]
            wanted = window.start + len(window.data)
            if wanted < chunk_start:
                # Bytes the window needs have streamed past unseen.
                del self._windows[i]
                continue
            if wanted < chunk_end:
                window.data += chunk[
                    wanted - chunk_start : window.start + window.length - chunk_start
                ]
                if len(window.data) == window.length:
                    del self._windows[i]
                    window.on_full(bytes(window.data))
                    continue
            i += 1

    def _collect(self, start: int, length: int, on_full: Callable[[bytes], None]) -> None:
        """Call *on_full* with the bytes at [start, start + length) once seen."""
        window = _Window(start, length, on_full)
        if start < len(self._head):
            window.data += self._head[start : start + length]
        if len(window.data) == length:
            on_full(bytes(window.data))
        else:
            self._windows.append(window)

    def _read_vhdx_regions(self) -> None:
        head = self._head
        for table in _VHDX_REGION_TABLES:
            if head[table : table + 4] != b"regi":
                continue
            (count,) = struct.unpack_from("<I", head, table + 8)
            if count > _VHDX_MAX_ENTRIES:
                return
            for entry in range(table + 16, table + 16 + 32 * count, 32):
                if head[entry : entry + 16] == _VHDX_METADATA_REGION:
                    offset, length = struct.unpack_from("<QI", head, entry + 16)
                    if length >= 32:
                        self._collect(
                            offset,
                            min(length, _VHDX_TABLE_SIZE),
                            functools.partial(self._read_vhdx_metadata, offset),
                        )
                    return
            return

    def _read_vhdx_metadata(self, region: int, table: bytes) -> None:
        if table[:8] != b"metadata":
            return
        (count,) = struct.unpack_from("<H", table, 10)
        count = min(count, _VHDX_MAX_ENTRIES, (len(table) - 32) // 32)
        for entry in range(32, 32 + 32 * count, 32):
            item = table[entry : entry + 16]
            if item == _VHDX_PARENT_LOCATOR:
                self._vhdx_unsafe = (
                    "The VHDX data is a differencing disk that refers to a parent disk, "
                    "which is not allowed."
                )
            elif item == _VHDX_VIRTUAL_DISK_SIZE:
                offset, length = struct.unpack_from("<II", table, entry + 16)
                if length != 8:
                    continue
                if offset + 8 <= len(table):
                    self._read_vhdx_size(table[offset : offset + 8])
                else:
                    self._collect(region + offset, 8, self._read_vhdx_size)

    def _read_vhdx_size(self, value: bytes) -> None:
        (self._vhdx_size,) = struct.unpack("<Q", value)

    def _inspect_vhdx(self, head: bytes) -> _Found | None:
        # Shorter data cannot hold the region tables, so it is no VHDX.
        if len(head) < _VHDX_MIN_SIZE or not head.startswith(_VHDX_SIGNATURE):
            return None
        return _Found("vhdx", self._vhdx_size, unsafe=self._vhdx_unsafe)


def _inspect_qcow2(head: bytes) -> _Found | None:
    if len(head) < 8 or not head.startswith(_QCOW2_MAGIC):
        return None
    (version,) = struct.unpack_from(">I", head, 4)
    if version not in (2, 3):
        return _Found(
            "qcow2",
            None,
            unsafe=f"QCOW version {version} is not supported (only qcow2 versions 2 and 3).",
        )
    if len(head) < (_QCOW2_V2_HEADER if version == 2 else _QCOW2_V3_HEADER):
        return None
    # An encrypted image (crypt_method at 32) is allowed: it names no other file.
    (backing_offset,) = struct.unpack_from(">Q", head, 8)
    (virtual_size,) = struct.unpack_from(">Q", head, 24)
    unsafe = None
    if backing_offset:
        unsafe = "The qcow2 data refers to a backing file, which is not allowed."
    elif version == 3:
        (incompatible,) = struct.unpack_from(">Q", head, 72)
        if incompatible & _QCOW2_DATA_FILE:
            unsafe = (
                "The qcow2 data keeps its contents in an external data file, which is not allowed."
            )
        elif incompatible & ~_QCOW2_KNOWN_INCOMPATIBLE:
            unsafe = (
                f"The qcow2 data uses unknown incompatible features "
                f"(0x{incompatible & ~_QCOW2_KNOWN_INCOMPATIBLE:x})."
            )
    return _Found("qcow2", virtual_size, unsafe=unsafe)


def _c_string(head: bytes, size: int, start: int, limit: int) -> bytes | None:
    """Return the NUL-terminated text at *start*, at most *limit* bytes long.

    Readers of vmdk descriptors treat them as C strings, whatever length
    the header gives.  ``None`` means the text runs past the bytes kept
    while the data goes on, so it cannot be checked.
    """
    end = start + limit
    nul = head.find(b"\0", start, end)
    if nul >= 0:
        return head[start:nul]
    if end > len(head) and size > len(head):
        return None
    return head[start:end]


def _inspect_vmdk(head: bytes, size: int) -> _Found | None:
    magic = head[:4]
    if magic == _VMDK4_MAGIC:
        if len(head) < _SECTOR:
            return None
        # capacity in sectors at 12, grain size at 20, descriptor sector at 28
        capacity, _, descriptor_sector = struct.unpack_from("<QQQ", head, 12)
        reason = _vmdk_parent_reason(head, size)
        if reason is None and descriptor_sector:
            if capacity == 0:
                # qemu then opens the extents the descriptor lists, by name.
                reason = (
                    "The VMDK header has no capacity and defers to the extent files its "
                    "descriptor names, which is not allowed."
                )
            else:
                reason = _vmdk_descriptor_reason(head, size, descriptor_sector * _SECTOR)
        return _Found("vmdk", capacity * _SECTOR, unsafe=reason)
    if magic == _VMDK3_MAGIC:
        if len(head) < _SECTOR:
            return None
        (capacity,) = struct.unpack_from("<I", head, 12)
        return _Found("vmdk", capacity * _SECTOR, unsafe=_vmdk_parent_reason(head, size))
    if _VMDK_TEXT.match(head, 0, _VMDK_TEXT_PROBE):
        match = _VMDK_CREATE_TYPE.search(head, 0, _VMDK_TEXT_PROBE)
        create_type = match.group(1).strip().decode("latin-1") if match else "unknown"
        return _Found(
            "vmdk",
            None,
            unsafe=(
                f"The data is a VMDK descriptor (createType '{create_type}') whose disk data "
                f"lives in separate extent files, which is not allowed."
            ),
        )
    return None


def _vmdk_parent_reason(head: bytes, size: int) -> str | None:
    # qemu finds the parent's name with a plain substring search, so this
    # looks in comments too.
    text = _c_string(head, size, *_VMDK_PARENT_SCAN)
    if text is None:
        return "The VMDK descriptor is too long to be checked."
    if _VMDK_PARENT_HINT in text.lower():
        return "The VMDK data refers to a parent disk, which is not allowed."
    return None


def _vmdk_descriptor_reason(head: bytes, size: int, start: int) -> str | None:
    if start >= len(head):
        if start >= size:
            return "The VMDK descriptor lies beyond the end of the data."
        return "The VMDK descriptor lies too far into the data to be checked."
    text = _c_string(head, size, start, HEAD_SIZE)
    if text is None:
        return "The VMDK descriptor is too long to be checked."
    if _VMDK_PARENT_HINT in text.lower():
        return "The VMDK data refers to a parent disk, which is not allowed."
    match = _VMDK_CREATE_TYPE.search(text)
    if match is None:
        return "The VMDK descriptor has no createType."
    create_type = match.group(1).strip()
    if create_type.lower() not in _VMDK_SAFE_TYPES:
        return (
            f"The VMDK createType '{create_type.decode('latin-1')}' refers to extent files "
            f"outside the image, which is not allowed."
        )
    for extent in _VMDK_EXTENT.finditer(text):
        if b"/" in extent.group(1) or b"\\" in extent.group(1):
            return "The VMDK descriptor names an extent file by path, which is not allowed."
    return None


def _inspect_vhd(head: bytes, tail: bytes) -> _Found | None:
    # A dynamic VHD copies its footer to the start; a fixed one has it only
    # at the end, after the guest's bytes.
    if len(head) >= _SECTOR and head.startswith(_VHD_COOKIE):
        footer, at_end = head[:_SECTOR], False
    elif len(tail) == _SECTOR and tail.startswith(_VHD_COOKIE):
        footer, at_end = tail, True
    else:
        return None
    (virtual_size,) = struct.unpack_from(">Q", footer, 48)
    (disk_type,) = struct.unpack_from(">I", footer, 60)
    unsafe = None
    if disk_type == _VHD_DIFFERENCING:
        unsafe = (
            "The VHD data is a differencing disk that refers to a parent disk, "
            "which is not allowed."
        )
    elif disk_type not in (_VHD_FIXED, _VHD_DYNAMIC):
        unsafe = f"The VHD disk type {disk_type} is not supported."
    return _Found(
        "vhd", virtual_size, unsafe=unsafe, guest_at_start=at_end and disk_type == _VHD_FIXED
    )


def _inspect_vdi(head: bytes) -> _Found | None:
    if len(head) < _SECTOR:
        return None
    signature, version, _, image_type = struct.unpack_from("<IIII", head, 0x40)
    if signature != _VDI_SIGNATURE:
        return None
    unsafe = None
    if version != _VDI_VERSION_1_1:
        unsafe = f"The VDI header version {version >> 16}.{version & 0xFFFF} is not supported."
    elif image_type not in _VDI_STANDALONE_TYPES:
        unsafe = (
            f"The VDI image type {image_type} is not a standalone disk "
            f"(only normal and fixed images are allowed)."
        )
    (virtual_size,) = struct.unpack_from("<Q", head, 0x170)
    return _Found("vdi", virtual_size if unsafe is None else None, unsafe=unsafe)


def _inspect_iso(head: bytes, size: int) -> _Found | None:
    if head[_ISO_DESCRIPTORS + 1 : _ISO_DESCRIPTORS + 6] != _ISO_MAGIC:
        return None
    last = _ISO_DESCRIPTORS + _ISO_MAX_DESCRIPTORS * _ISO_DESCRIPTOR_SIZE
    for offset in range(_ISO_DESCRIPTORS, last, _ISO_DESCRIPTOR_SIZE):
        if head[offset + 1 : offset + 6] != _ISO_MAGIC or head[offset] == 255:
            break
        if head[offset] != 1 or len(head) < offset + 132:
            continue
        # The primary volume descriptor: block count and block size, each
        # stored little-endian then big-endian; disagreement means damage.
        (blocks,) = struct.unpack_from("<I", head, offset + 80)
        (blocks_be,) = struct.unpack_from(">I", head, offset + 84)
        (block_size,) = struct.unpack_from("<H", head, offset + 128)
        (block_size_be,) = struct.unpack_from(">H", head, offset + 130)
        if blocks == blocks_be and block_size == block_size_be and blocks and block_size:
            return _Found("iso", blocks * block_size)
        break
    return _Found("iso", size)
