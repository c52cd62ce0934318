"""``ReadAhead``: a download's data read ahead in a thread, and stopped cleanly."""

from __future__ import annotations

import threading

import pytest

from nimbus.image.data import ReadAhead


class Reader:
    """A store reader over *data* that records its calls and may fail."""

    def __init__(self, data: bytes, *, fail_after: int | None = None) -> None:
        self.data = data
        self.offset = 0
        self.reads = 0
        self.closed = False
        self.fail_after = fail_after
        self.threads: set[str] = set()

    def read(self, size: int = -1, /) -> bytes:
        assert not self.closed, "read after close"
        self.threads.add(threading.current_thread().name)
        if self.fail_after is not None and self.reads >= self.fail_after:
            raise OSError("the disk went away")
        self.reads += 1
        chunk = self.data[self.offset : self.offset + size]
        self.offset += len(chunk)
        return chunk

    def close(self) -> None:
        self.closed = True


def _reading_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "image-read"]


@pytest.mark.parametrize("size", [0, 1, 4096, 4097, 10 * 4096 + 5])
def test_yields_every_byte_in_chunks_read_in_a_thread(size: int) -> None:
    data = bytes(range(256)) * (size // 256 + 1)
    data = data[:size]
    reader = Reader(data)
    body = ReadAhead(reader, 4096)
    chunks = list(body)
    body.close()
    assert b"".join(chunks) == data
    assert all(len(chunk) == 4096 for chunk in chunks[:-1])
    assert reader.threads == {"image-read"}
    assert reader.closed
    assert _reading_threads() == []


def test_close_before_iterating_closes_the_reader_and_starts_no_thread() -> None:
    reader = Reader(b"x" * 100_000)
    body = ReadAhead(reader, 4096)
    body.close()
    assert reader.closed
    assert reader.reads == 0
    assert _reading_threads() == []


def test_close_halfway_stops_the_thread_then_closes_the_reader() -> None:
    # The client went away after two chunks: the WSGI server closes the body.
    reader = Reader(b"y" * 1_000_000)
    body = ReadAhead(reader, 4096)
    iterator = iter(body)
    assert next(iterator) == b"y" * 4096
    assert next(iterator) == b"y" * 4096
    body.close()
    assert reader.closed
    assert _reading_threads() == []
    # Bounded: the thread read at most the queue's depth and one more ahead.
    assert reader.reads <= 2 + 1 + 1


def test_a_read_error_reaches_the_consumer() -> None:
    reader = Reader(b"z" * 100_000, fail_after=3)
    body = ReadAhead(reader, 4096)
    iterator = iter(body)
    received = [next(iterator) for _ in range(3)]
    with pytest.raises(OSError, match="the disk went away"):
        next(iterator)
    body.close()
    assert received == [b"z" * 4096] * 3
    assert reader.closed
    assert _reading_threads() == []
