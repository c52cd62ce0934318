"""A direct upload fed small chunks keeps its file's mtime fresh for ``purge_partial``."""

from __future__ import annotations

import concurrent.futures
import errno
import os
import threading
from collections.abc import Iterator

import pytest
from oslo_config import cfg

from nimbus.drivers.image.file import FileStore
from nimbus.testing.image_store import ChunkSourceError, FakeTime

TIMEOUT = 30.0


@pytest.fixture
def direct_store(conf: cfg.ConfigOpts) -> tuple[FileStore, FakeTime]:
    conf.set_override("direct_io", True, group="image_file_store")
    clock = FakeTime()
    store = FileStore(conf, now=clock)
    probe = os.path.join(store.datadir, ".probe")
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | getattr(os, "O_DIRECT", 0), 0o600))
    except OSError as ex:
        if ex.errno != errno.EINVAL:
            raise
        pytest.skip(f"{store.datadir} refuses O_DIRECT")
    finally:
        if os.path.exists(probe):
            os.unlink(probe)
    return store, clock


def test_small_chunks_waiting_in_the_direct_buffer_count_as_progress(
    direct_store: tuple[FileStore, FakeTime],
) -> None:
    store, clock = direct_store
    started, release = threading.Event(), threading.Event()

    def trickle() -> Iterator[bytes]:
        # Ten 4 KiB chunks a second apart: far less than the 1 MiB buffer,
        # so nothing reaches the file, yet the upload is alive.
        for _ in range(10):
            yield b"t" * 4096
            clock.advance(1.0)
        started.set()
        release.wait(TIMEOUT)
        raise ChunkSourceError("the client went away")

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        upload = pool.submit(store.add, "image-1", trickle())
        try:
            assert started.wait(TIMEOUT)
            assert store.purge_partial(older_than=5) == 0
            clock.advance(3600)
            assert store.purge_partial(older_than=5) == 1
        finally:
            release.set()
        with pytest.raises(ChunkSourceError):
            upload.result(timeout=TIMEOUT)
    assert os.listdir(store.datadir) == []
