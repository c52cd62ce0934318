"""Read the subunit v2 stream that stestr records into one result per test.

The format (python-subunit's ``v2.py`` documents it): a sequence of packets,
each ``0xB3``, two bytes of flags (version 2 in the top four bits, then which
optional fields follow, and the test status in the low three bits), the
packet's whole length as a variable-length number, the fields, and a
CRC-32 of everything before it.  A test is reported by several packets (in
progress, its attachments, its final status), keyed by test id and route
code (the worker).  Only the standard library is needed, so the runner
reads the stream without tempest's venv.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field

__all__ = [
    "INTERIM",
    "Packet",
    "StreamError",
    "TestResult",
    "packets",
    "read_results",
]

_SIGNATURE = 0xB3
_VERSION = 2
_TEST_ID = 0x0800
_ROUTE_CODE = 0x0400
_TIMESTAMP = 0x0200
_TAGS = 0x0080
_FILE_CONTENT = 0x0040
_MIME_TYPE = 0x0020
_STATUSES: tuple[str | None, ...] = (
    None,
    "exists",
    "inprogress",
    "success",
    "uxsuccess",
    "skip",
    "fail",
    "xfail",
)

#: Statuses that are not an outcome: the test is listed or still running.
INTERIM = frozenset({None, "exists", "inprogress"})


class StreamError(ValueError):
    """The stream is not valid subunit v2."""


@dataclass(frozen=True)
class Packet:
    """The fields of one packet the counting needs."""

    test_id: str | None
    status: str | None
    route_code: str | None = None
    file_name: str | None = None
    file_bytes: bytes = b""


@dataclass
class TestResult:
    """What the stream said about one test: its last status and attachments."""

    __test__ = False  # not a pytest test class, whatever its name says

    test_id: str
    status: str | None = None
    details: dict[str, bytes] = field(default_factory=dict)

    def text(self, name: str) -> str | None:
        """Return the attachment *name* as text, or ``None`` when absent."""
        data = self.details.get(name)
        return None if data is None else data.decode("utf-8", "replace")


def _number(buf: bytes, pos: int) -> tuple[int, int]:
    """Return a variable-length number at *pos* and the position after it."""
    if pos >= len(buf):
        raise StreamError(f"number past the end of a packet at byte {pos}")
    first = buf[pos]
    extra = first >> 6  # the top two bits: how many more bytes follow
    end = pos + 1 + extra
    if end > len(buf):
        raise StreamError(f"number past the end of a packet at byte {pos}")
    value = first & 0x3F
    for byte in buf[pos + 1 : end]:
        value = (value << 8) | byte
    return value, end


def _string(buf: bytes, pos: int) -> tuple[str, int]:
    length, pos = _number(buf, pos)
    if pos + length > len(buf):
        raise StreamError(f"string past the end of a packet at byte {pos}")
    return buf[pos : pos + length].decode("utf-8"), pos + length


def packets(data: bytes) -> Iterator[Packet]:
    """Yield the packets of *data*, skipping bytes outside packets.

    :raises StreamError: a packet is truncated, has a bad checksum or an
        unknown version.
    """
    pos = 0
    while pos < len(data):
        if data[pos] != _SIGNATURE:
            # Output that is not subunit (a worker's stray print): skip it.
            nxt = data.find(bytes([_SIGNATURE]), pos + 1)
            if nxt < 0:
                return
            pos = nxt
            continue
        if pos + 4 > len(data):
            raise StreamError(f"truncated packet at byte {pos}")
        flags = int.from_bytes(data[pos + 1 : pos + 3], "big")
        length, body = _number(data, pos + 3)
        end = pos + length
        if body + 4 > end or end > len(data):
            raise StreamError(f"truncated packet at byte {pos}")
        if zlib.crc32(data[pos : end - 4]) != int.from_bytes(data[end - 4 : end], "big"):
            raise StreamError(f"bad checksum in the packet at byte {pos}")
        if flags >> 12 != _VERSION:
            raise StreamError(f"packet at byte {pos} is not subunit v2")
        yield _fields(data[body : end - 4], flags)
        pos = end


def _fields(buf: bytes, flags: int) -> Packet:
    pos = 0
    test_id = route_code = file_name = None
    file_bytes = b""
    if flags & _TIMESTAMP:
        _, pos = _number(buf, pos + 4)  # seconds, then nanoseconds: not needed
    if flags & _TEST_ID:
        test_id, pos = _string(buf, pos)
    if flags & _TAGS:
        count, pos = _number(buf, pos)
        for _ in range(count):
            _, pos = _string(buf, pos)
    if flags & _MIME_TYPE:
        _, pos = _string(buf, pos)
    if flags & _FILE_CONTENT:
        file_name, pos = _string(buf, pos)
        size, pos = _number(buf, pos)
        if pos + size > len(buf):
            raise StreamError("file content past the end of its packet")
        file_bytes, pos = bytes(buf[pos : pos + size]), pos + size
    if flags & _ROUTE_CODE:
        route_code, pos = _string(buf, pos)
    return Packet(test_id, _STATUSES[flags & 0x07], route_code, file_name, file_bytes)


def read_results(data: bytes) -> list[TestResult]:
    """Return one result per test of the stream, in the order they ended.

    A test's attachments are joined across its packets; a test whose
    stream ends before its final status is returned last, as it was.

    :raises StreamError: see :func:`packets`.
    """
    running: dict[tuple[str, str | None], TestResult] = {}
    ended: list[TestResult] = []
    for packet in packets(data):
        if packet.test_id is None:
            continue  # stdout of the run as a whole
        key = (packet.test_id, packet.route_code)
        result = running.setdefault(key, TestResult(packet.test_id))
        if packet.file_name is not None:
            result.details[packet.file_name] = (
                result.details.get(packet.file_name, b"") + packet.file_bytes
            )
        if packet.status is not None:
            result.status = packet.status
        if packet.status not in INTERIM:
            ended.append(running.pop(key))
    ended.extend(running.values())
    return ended
