"""Base images of one compute host: downloaded once, shared by its guests.

The compute agent asks :meth:`ImageCache.path_for` for an image before a
spawn and hands the path to the compute driver, which lays an overlay on
it; the base file itself is never written again.  A periodic task calls
:meth:`ImageCache.cleanup` with the images the host's guests still use.

Layout of ``base_dir``: one file per image, named by its id; downloads in
progress live in ``.partial/`` and become visible by one ``rename``, so a
reader never sees half an image; ``.locks/`` holds a lock file per image,
so that several processes sharing the directory download an image once
too.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterator

from nimbus import exception

__all__ = ["ImageCache"]

LOG = logging.getLogger(__name__)

_PARTIAL = ".partial"
_LOCKS = ".locks"
_VALID_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}")


class ImageCache:
    """A host's cache of base images, by image id.

    :param base_dir: the cache directory (made when missing).
    :param fetch: ``fetch(image_id, dest_path)`` writes the image's data
        to the new file *dest_path* (from the image service); it raises on
        failure, and may leave a partial file, which the cache removes.
    :param grace_period: seconds an unused base image is kept after its
        last use, so a guest rebuilt soon after a delete finds it.
    :param now: the wall clock (``time.time``), for the grace period.
    """

    def __init__(
        self,
        base_dir: str,
        *,
        fetch: Callable[[str, str], None],
        grace_period: float = 24 * 3600,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.base_dir = base_dir
        self._fetch = fetch
        self.grace_period = grace_period
        self._now = now
        self._locks_lock = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        # QEMU runs as another user and must reach the base files.
        for directory in (base_dir, self._partial_dir, self._lock_dir):
            os.makedirs(directory, mode=0o755, exist_ok=True)

    @property
    def _partial_dir(self) -> str:
        return os.path.join(self.base_dir, _PARTIAL)

    @property
    def _lock_dir(self) -> str:
        return os.path.join(self.base_dir, _LOCKS)

    @staticmethod
    def _check_id(image_id: str) -> None:
        if not isinstance(image_id, str) or not _VALID_ID.fullmatch(image_id):
            raise exception.ValidationError(
                field="image_id", reason=f"{image_id!r} cannot name a cached file"
            )

    @contextlib.contextmanager
    def _locked(self, image_id: str) -> Iterator[None]:
        """Hold *image_id*'s lock: against this process's threads, then other processes."""
        with self._locks_lock:
            thread_lock = self._locks.setdefault(image_id, threading.Lock())
        with thread_lock:
            path = os.path.join(self._lock_dir, image_id + ".lock")
            with open(path, "a") as lock_file:
                fcntl.flock(lock_file, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(lock_file, fcntl.LOCK_UN)

    def _touch(self, path: str) -> None:
        now = self._now()
        os.utime(path, (now, now))

    def path_for(self, image_id: str) -> str:
        """Return the local file of *image_id*, downloading it if this host has none.

        Concurrent callers for one image wait for one download; callers for
        different images do not wait for each other.  The use is recorded
        (the file's mtime), which restarts the grace period.

        :param image_id: the image's id.
        :returns: the path of the complete base file.
        :raises ValidationError: *image_id* cannot name a file.
        :raises Exception: whatever ``fetch`` raised; nothing is cached then,
            and the next call tries again.
        """
        self._check_id(image_id)
        path = os.path.join(self.base_dir, image_id)
        with self._locked(image_id):
            if os.path.exists(path):
                self._touch(path)
                return path
            partial = os.path.join(self._partial_dir, f"{image_id}.{uuid.uuid4().hex}")
            started = time.monotonic()
            try:
                self._fetch(image_id, partial)
                os.chmod(partial, 0o644)
                os.replace(partial, path)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(partial)
                raise
            self._touch(path)
            LOG.info("Cached image %s in %.1f s", image_id, time.monotonic() - started)
            return path

    def cached(self) -> set[str]:
        """Return the ids of the images this host holds complete."""
        return {
            name
            for name in os.listdir(self.base_dir)
            if not name.startswith(".") and os.path.isfile(os.path.join(self.base_dir, name))
        }

    def cleanup(self, in_use: Collection[str]) -> list[str]:
        """Remove the base images no guest uses that were last used before the grace period.

        Also removes what downloads that never finished (a crashed agent's)
        left in ``.partial/`` for longer than the grace period.

        :param in_use: ids of the images the host's guests use now.
        :returns: the ids of the images removed, sorted.
        """
        keep = set(in_use)
        cutoff = self._now() - self.grace_period
        removed = []
        for image_id in sorted(self.cached() - keep):
            path = os.path.join(self.base_dir, image_id)
            with self._locked(image_id):
                # Asked for again while we waited: it stays.
                try:
                    if os.stat(path).st_mtime > cutoff:
                        continue
                    os.unlink(path)
                except FileNotFoundError:
                    continue
            removed.append(image_id)
            LOG.info("Removed unused cached image %s", image_id)
        for name in os.listdir(self._partial_dir):
            path = os.path.join(self._partial_dir, name)
            with contextlib.suppress(FileNotFoundError):
                if os.stat(path).st_mtime < cutoff:
                    os.unlink(path)
        return removed
