"""The runner's subunit v2 reader, on streams made by hand."""

from __future__ import annotations

import struct
import zlib

import pytest

from tests.unit.tools.subunit_stream import number, packet, ran
from tools.tempest.subunit_v2 import StreamError, packets, read_results

ID = "tempest.api.image.v2.test_images.BasicOperationsImagesTest.test_delete_image[id-1,smoke]"


def test_a_test_reported_in_three_packets_is_one_result() -> None:
    results = read_results(ran(ID, "fail", reason="Traceback: boom"))
    assert [(r.test_id, r.status) for r in results] == [(ID, "fail")]
    assert results[0].text("traceback") == "Traceback: boom"
    assert results[0].text("reason") is None


def test_attachments_split_over_packets_are_joined() -> None:
    stream = (
        packet(ID, "inprogress")
        + packet(ID, file_name="traceback", file_bytes=b"first half, ")
        + packet(ID, file_name="traceback", file_bytes=b"second half")
        + packet(ID, "success")
    )
    assert read_results(stream)[0].text("traceback") == "first half, second half"


@pytest.mark.parametrize("size", [10, 100, 20_000, 3_000_000])
def test_lengths_of_every_width_are_read(size: int) -> None:
    data = bytes(range(256)) * (size // 256 + 1)
    stream = packet(ID, "skip", file_name="reason", file_bytes=data[:size]) + ran("b", "success")
    results = read_results(stream)
    assert results[0].details["reason"] == data[:size]
    assert [r.status for r in results] == ["skip", "success"]


def test_the_same_test_on_two_workers_is_two_results() -> None:
    stream = (
        packet("t", "inprogress", route_code="0")
        + packet("t", "inprogress", route_code="1")
        + packet("t", "success", route_code="1")
        + packet("t", "fail", route_code="0")
    )
    assert [r.status for r in read_results(stream)] == ["success", "fail"]


def test_a_test_the_stream_never_ended_is_returned_in_progress() -> None:
    stream = packet("ended", "inprogress") + packet("cut", "inprogress") + packet("ended", "xfail")
    assert [(r.test_id, r.status) for r in read_results(stream)] == [
        ("ended", "xfail"),
        ("cut", "inprogress"),
    ]


def test_timestamps_tags_and_mime_types_are_skipped_over() -> None:
    stream = packet(
        ID,
        "success",
        timestamp=(1_700_000_000, 999_999_999),
        tags=["worker-1", "smoke"],
        mime_type="text/plain",
        file_name="stdout",
        file_bytes=b"x",
        route_code="1",
    )
    (only,) = packets(stream)
    assert (only.test_id, only.status, only.route_code, only.file_bytes) == (
        ID,
        "success",
        "1",
        b"x",
    )


def test_packets_without_a_test_and_bytes_outside_packets_are_ignored() -> None:
    stream = b"plain output\n" + packet(file_name="stdout", file_bytes=b"hi") + ran(ID, "success")
    assert [(r.test_id, r.status) for r in read_results(stream)] == [(ID, "success")]


def test_a_corrupt_packet_is_an_error() -> None:
    good = packet(ID, "success")
    bad = good[:-5] + bytes([good[-5] ^ 0xFF]) + good[-4:]
    with pytest.raises(StreamError, match="checksum"):
        read_results(bad)
    with pytest.raises(StreamError, match="truncated"):
        read_results(good[:-2])


def test_a_packet_of_another_version_is_an_error() -> None:
    head = b"\xb3" + bytes([0x10, 0x03]) + number(8)  # version 1
    with pytest.raises(StreamError, match="not subunit v2"):
        list(packets(head + struct.pack(">I", zlib.crc32(head))))
