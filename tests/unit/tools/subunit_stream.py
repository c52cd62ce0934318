"""Hand-made subunit v2 streams for the runner's tests.

Written from the format's description (python-subunit's ``v2.py``), not
with the runner's reader, so that the two check each other.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable

STATUS = {
    None: 0,
    "exists": 1,
    "inprogress": 2,
    "success": 3,
    "uxsuccess": 4,
    "skip": 5,
    "fail": 6,
    "xfail": 7,
}


def number(value: int) -> bytes:
    """Encode *value* as subunit's variable-length number."""
    if value < 0x40:
        return bytes([value])
    if value < 0x4000:
        return struct.pack(">H", value | 0x4000)
    if value < 0x400000:
        return struct.pack(">I", value | 0x800000)[1:]
    return struct.pack(">I", value | 0xC0000000)


def text(value: str) -> bytes:
    data = value.encode("utf-8")
    return number(len(data)) + data


def packet(
    test_id: str | None = None,
    status: str | None = None,
    *,
    file_name: str | None = None,
    file_bytes: bytes = b"",
    mime_type: str | None = None,
    route_code: str | None = None,
    tags: Iterable[str] = (),
    timestamp: tuple[int, int] | None = None,
) -> bytes:
    """Return one packet with the given fields."""
    flags = 0x2000 | STATUS[status] | 0x0100  # version 2, runnable
    body = b""
    if timestamp is not None:
        flags |= 0x0200
        body += struct.pack(">I", timestamp[0]) + number(timestamp[1])
    if test_id is not None:
        flags |= 0x0800
        body += text(test_id)
    tags = list(tags)
    if tags:
        flags |= 0x0080
        body += number(len(tags)) + b"".join(text(t) for t in tags)
    if mime_type is not None:
        flags |= 0x0020
        body += text(mime_type)
    if file_name is not None:
        flags |= 0x0040 | 0x0010  # the whole file: eof
        body += text(file_name) + number(len(file_bytes)) + file_bytes
    if route_code is not None:
        flags |= 0x0400
        body += text(route_code)
    size = 1 + 2 + len(body) + 4
    for width in (1, 2, 3):
        if len(number(size + width)) == width:
            size += width
            break
    head = b"\xb3" + struct.pack(">H", flags) + number(size) + body
    return head + struct.pack(">I", zlib.crc32(head) & 0xFFFFFFFF)


def ran(test_id: str, status: str, reason: str | None = None, worker: str = "0") -> bytes:
    """Return the packets stestr records for one test: started, then ended."""
    started = packet(test_id, "inprogress", route_code=worker, timestamp=(1_700_000_000, 5))
    details = b""
    if reason is not None:
        name = "reason" if status == "skip" else "traceback"
        details = packet(
            test_id,
            file_name=name,
            file_bytes=reason.encode(),
            mime_type="text/plain;charset=utf8",
            route_code=worker,
        )
    ended = packet(test_id, status, route_code=worker, tags=["worker-" + worker])
    return started + details + ended
