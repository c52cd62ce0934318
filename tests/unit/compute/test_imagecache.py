"""The compute host's base image cache."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from nimbus import exception
from nimbus.compute.imagecache import ImageCache


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


class Fetcher:
    """Writes ``data of <id>``, counting calls; may fail or wait on an event."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.lock = threading.Lock()
        self.fail: Exception | None = None
        self.gate: dict[str, threading.Event] = {}
        self.started: dict[str, threading.Event] = {}

    def __call__(self, image_id: str, dest: str) -> None:
        with self.lock:
            self.calls.append(image_id)
        with open(dest, "wb") as f:
            f.write(b"half of ")
            f.flush()
            if image_id in self.started:
                self.started[image_id].set()
            if image_id in self.gate:
                assert self.gate[image_id].wait(10)
            if self.fail is not None:
                raise self.fail
            f.write(f"data of {image_id}".encode())


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fetch() -> Fetcher:
    return Fetcher()


@pytest.fixture
def cache(tmp_path: Path, fetch: Fetcher, clock: Clock) -> ImageCache:
    return ImageCache(str(tmp_path / "base"), fetch=fetch, grace_period=3600, now=clock)


def test_downloads_once_and_returns_the_complete_file(cache: ImageCache, fetch: Fetcher) -> None:
    first = cache.path_for("img-1")
    second = cache.path_for("img-1")
    assert first == second == os.path.join(cache.base_dir, "img-1")
    assert Path(first).read_bytes() == b"half of data of img-1"
    assert fetch.calls == ["img-1"]
    assert cache.cached() == {"img-1"}
    assert os.stat(first).st_mode & 0o777 == 0o644


def test_a_new_cache_on_the_same_directory_finds_the_image(
    cache: ImageCache, fetch: Fetcher, clock: Clock
) -> None:
    cache.path_for("img-1")
    again = ImageCache(cache.base_dir, fetch=fetch, now=clock)
    again.path_for("img-1")
    assert fetch.calls == ["img-1"]


def test_concurrent_callers_wait_for_one_download(cache: ImageCache, fetch: Fetcher) -> None:
    fetch.gate["img-1"] = threading.Event()
    fetch.started["img-1"] = threading.Event()
    results: list[str] = []

    def ask() -> None:
        results.append(cache.path_for("img-1"))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    assert fetch.started["img-1"].wait(10)
    # Mid-download: the image is not visible, only its partial file.
    assert cache.cached() == set()
    assert not os.path.exists(os.path.join(cache.base_dir, "img-1"))
    assert len(os.listdir(os.path.join(cache.base_dir, ".partial"))) == 1
    fetch.gate["img-1"].set()
    for thread in threads:
        thread.join(10)
    assert fetch.calls == ["img-1"]
    assert len(results) == 8
    assert set(results) == {os.path.join(cache.base_dir, "img-1")}
    assert Path(results[0]).read_bytes() == b"half of data of img-1"


def test_different_images_download_side_by_side(cache: ImageCache, fetch: Fetcher) -> None:
    fetch.gate["slow"] = threading.Event()
    fetch.started["slow"] = threading.Event()
    slow = threading.Thread(target=cache.path_for, args=("slow",))
    slow.start()
    assert fetch.started["slow"].wait(10)
    # Not held up by the slow download.
    assert Path(cache.path_for("fast")).read_bytes() == b"half of data of fast"
    fetch.gate["slow"].set()
    slow.join(10)
    assert cache.cached() == {"slow", "fast"}


def test_failed_download_leaves_nothing_and_is_retried(cache: ImageCache, fetch: Fetcher) -> None:
    fetch.fail = OSError("connection reset")
    with pytest.raises(OSError, match="connection reset"):
        cache.path_for("img-1")
    assert cache.cached() == set()
    assert os.listdir(os.path.join(cache.base_dir, ".partial")) == []
    fetch.fail = None
    assert Path(cache.path_for("img-1")).read_bytes() == b"half of data of img-1"
    assert fetch.calls == ["img-1", "img-1"]


@pytest.mark.parametrize("bad", ["", "../etc/passwd", ".partial", "a/b", "x" * 300])
def test_ids_that_cannot_name_a_file_are_refused(cache: ImageCache, bad: str) -> None:
    with pytest.raises(exception.ValidationError):
        cache.path_for(bad)
    assert cache.cached() == set()


def test_cleanup_removes_only_unused_images_past_the_grace_period(
    cache: ImageCache, clock: Clock
) -> None:
    cache.path_for("used")
    cache.path_for("old")
    clock.now += 3000
    cache.path_for("recent")
    clock.now += 1000
    # "old" was last used 4000 s ago, "recent" 1000 s ago, "used" is in use.
    assert cache.cleanup({"used"}) == ["old"]
    assert cache.cached() == {"used", "recent"}
    clock.now += 3000
    assert cache.cleanup({"used"}) == ["recent"]
    assert cache.cached() == {"used"}


def test_use_restarts_the_grace_period(cache: ImageCache, clock: Clock, fetch: Fetcher) -> None:
    cache.path_for("img-1")
    clock.now += 3000
    cache.path_for("img-1")
    clock.now += 3000
    assert cache.cleanup(set()) == []
    clock.now += 1000
    assert cache.cleanup(set()) == ["img-1"]
    cache.path_for("img-1")
    assert fetch.calls == ["img-1", "img-1"]


def test_cleanup_removes_stale_partial_downloads(cache: ImageCache, clock: Clock) -> None:
    partial_dir = Path(cache.base_dir, ".partial")
    stale = partial_dir / "img-9.dead"
    fresh = partial_dir / "img-8.live"
    stale.write_bytes(b"half")
    fresh.write_bytes(b"half")
    os.utime(stale, (clock.now - 7200, clock.now - 7200))
    os.utime(fresh, (clock.now - 60, clock.now - 60))
    assert cache.cleanup(set()) == []
    assert sorted(os.listdir(partial_dir)) == ["img-8.live"]
