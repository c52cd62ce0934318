"""The ``fake`` image store: image data in memory."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterable

from oslo_config import cfg

from nimbus import exception
from nimbus.drivers.image.base import ImageStore
from nimbus.drivers.image.types import Capacity, ClosingReader, DataReader, StoredData

__all__ = ["FakeStore"]

_SCHEME = "fake://"


class _MemoryReader(ClosingReader):
    """A bounded reader of one stored bytearray."""

    def __init__(self, data: bytearray, start: int, stop: int) -> None:
        self._view: memoryview | None = memoryview(data)
        self._pos = start
        self._stop = stop

    def read(self, size: int = -1, /) -> bytes:
        if self._view is None:
            raise ValueError("read of a closed reader")
        end = self._stop if size < 0 else min(self._stop, self._pos + size)
        data = bytes(self._view[self._pos : end])
        self._pos = max(self._pos, end)
        return data

    def close(self) -> None:
        if self._view is not None:
            self._view.release()
            self._view = None


class FakeStore(ImageStore):
    """Image data in memory, lost at exit: for tests and demos.

    Behaves like the ``file`` store (all-or-nothing uploads, one location
    per image) and is safe to share between threads.

    :param size_limit: the most bytes the store holds, counting uploads in
        progress; passing it raises ``StorageFull``.  No limit when ``None``.
    """

    def __init__(
        self,
        conf: cfg.ConfigOpts,
        *,
        store_id: str | None = None,
        options_group: str | None = None,
        size_limit: int | None = None,
    ) -> None:
        super().__init__(conf, store_id=store_id or "fake", options_group=options_group)
        self._size_limit = size_limit
        self._lock = threading.Lock()
        self._images: dict[str, bytearray] = {}
        # Uploads in progress, so tests can see that failed ones are dropped.
        self._partial: dict[str, bytearray] = {}

    def _used(self) -> int:
        return sum(map(len, self._images.values())) + sum(map(len, self._partial.values()))

    @staticmethod
    def _image_id_of(location: str) -> str | None:
        if isinstance(location, str) and location.startswith(_SCHEME):
            return location[len(_SCHEME) :] or None
        return None

    def add(self, image_id: str, chunks: Iterable[bytes | memoryview]) -> StoredData:
        token = f"{image_id}.{uuid.uuid4().hex}"
        buffer = bytearray()
        with self._lock:
            self._partial[token] = buffer
        try:
            for chunk in chunks:
                with self._lock:
                    limit = self._size_limit
                    if limit is not None and self._used() + len(chunk) > limit:
                        raise exception.StorageFull(
                            store="fake", reason=f"the limit of {limit} bytes is reached"
                        )
                    buffer += chunk
            with self._lock:
                self._images[image_id] = buffer
        finally:
            with self._lock:
                del self._partial[token]
        return StoredData(location=_SCHEME + image_id, size=len(buffer))

    def get(self, location: str, *, offset: int = 0, length: int | None = None) -> DataReader:
        if offset < 0:
            raise exception.ValidationError(field="offset", reason="must not be negative")
        if length is not None and length < 0:
            raise exception.ValidationError(field="length", reason="must not be negative")
        image_id = self._image_id_of(location)
        with self._lock:
            data = self._images.get(image_id) if image_id is not None else None
            if data is None:
                raise exception.NotFound(kind="image data", id=location)
            start = min(offset, len(data))
            stop = len(data) if length is None else min(len(data), start + length)
            # A stored bytearray is never changed again, so readers share it.
            return _MemoryReader(data, start, stop)

    def delete(self, location: str) -> None:
        image_id = self._image_id_of(location)
        if image_id is None:
            raise exception.DriverError(
                driver=self.name, reason=f"{location!r} is not a location of this store"
            )
        with self._lock:
            self._images.pop(image_id, None)

    def capacity(self) -> Capacity:
        if self._size_limit is None:
            return Capacity(total=None, free=None)
        with self._lock:
            return Capacity(total=self._size_limit, free=max(0, self._size_limit - self._used()))

    def ex_partial_writes(self) -> set[str]:
        """Return the names of the uploads in progress (for tests)."""
        with self._lock:
            return set(self._partial)
