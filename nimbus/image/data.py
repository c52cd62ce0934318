"""Image data: streamed uploads and downloads between the API and the store.

An upload claims the image (``queued`` -> ``saving``, compare-and-swap, so
a second concurrent upload gets 409), streams the body to the store in
bounded chunks while computing its size, MD5 ``checksum`` and multihash,
checks the declared length and checksums, the size cap and the project's
storage quota, inspects the disk format, and finishes the image
(``saving`` -> ``active``).  Any failure, a client that went away
included, deletes what was stored and puts the image back to ``queued``.

While data arrives, the upload refreshes its heartbeat (the image's
``updated_at``) at most every ``[image] upload_heartbeat_interval``
seconds: one database update per interval, none per chunk.  An upload
whose heartbeat is older than ``[image] upload_stale_after`` is taken for
dead (its process was killed, or its client went silent) and its image
goes back to ``queued`` (:meth:`ImageData.recover`, run periodically by
:mod:`nimbus.image.tasks`); if that upload was alive after all, its next
heartbeat or its finish fails, and nothing it stored is kept.

Every SQL statement of the data path is a method of
:class:`~nimbus.image.service.ImageService`, the one owner of the
``images`` table.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import logging
import mmap
import queue
import re
import threading
import time
from collections.abc import Callable, Generator, Iterator
from functools import partial
from typing import Any, TypeVar

from nimbus import exception
from nimbus.common.logsafe import printable
from nimbus.context import RequestContext
from nimbus.drivers.image import Capability, DataReader, StoredData
from nimbus.image.formats import FormatInspector
from nimbus.image.service import ImageService, StoredImage, UploadClaim, utcnow

__all__ = ["Download", "ImageData", "ReadAhead", "parse_range", "reading_into"]

LOG = logging.getLogger(__name__)

#: Transfers of this many chunks or more get a thread that reads ahead
#: (and, for uploads, hashing threads); smaller ones are not worth the threads.
_THREADED_CHUNKS = 8
#: A chunked upload under a storage quota reserves this many chunks ahead
#: of what it received: one database write per step.
_RESERVE_CHUNKS = 4
#: Buffers of ``chunk_size`` a threaded upload reads into, in turn: how far
#: reading may run ahead of the slowest of hashing and writing.
_BUFFERS = 5

#: Digits of the largest position a range may name (a 64-bit size has 20).
_RANGE_DIGITS = 20
_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$")


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """Return (offset, length) of a single ``Range: bytes=...`` request, or None.

    A missing or malformed header means the whole image (a server may
    ignore a Range it does not understand).

    :raises RangeNotSatisfiable: the range lies outside the data.
    """
    if not header:
        return None
    match = _RANGE.match(header)
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if max(len(first.lstrip("0")), len(last.lstrip("0"))) > _RANGE_DIGITS:
        # No image is that large; int() would also refuse past 4,300 digits.
        raise exception.RangeNotSatisfiable(range=header.strip()[:64], size=size)
    if not first:
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise exception.RangeNotSatisfiable(range=header.strip(), size=size)
        suffix = min(suffix, size)
        return size - suffix, suffix
    start = int(first)
    end = int(last) if last else size - 1
    if last and end < start:
        return None
    if start >= size:
        raise exception.RangeNotSatisfiable(range=header.strip(), size=size)
    end = min(end, size - 1)
    return start, end - start + 1


def _read_body(readinto: Callable[[memoryview], int], view: memoryview) -> int:
    """Read the next bytes of a request body into *view*; return how many (0 at its end).

    What the web server's input stream raises means a stalled, malformed or
    cut-off body: the client's fault, not the server's.

    :raises RequestTimeout: the server's read timeout passed (``[api]
        body_timeout`` under nimbus.server.Worker): 408.
    :raises BadRequest: anything else the stream raised (gunicorn's
        InvalidChunkSize or NoMoreData, a reset connection).
    """
    try:
        return readinto(view)
    except TimeoutError as ex:
        raise exception.RequestTimeout() from ex
    except Exception as ex:  # noqa: BLE001 - any server's input errors are the client's
        raise exception.BadRequest(
            reason="The request body is malformed or ended early; the image was not stored."
        ) from ex


def _fill(
    readinto: Callable[[memoryview], int], view: memoryview, heartbeat: Callable[[], None]
) -> int:
    """Read into all of *view*, or until the body ends; return the bytes read.

    *heartbeat* is called after every read that brought data, so that a
    slow client filling a chunk still shows its upload alive.
    """
    filled = 0
    while filled < len(view):
        count = _read_body(readinto, view[filled:])
        if not count:
            break
        filled += count
        heartbeat()
    return filled


def reading_into(read: Callable[[int], bytes]) -> Callable[[memoryview], int]:
    """Return a ``readinto`` for a body read as new bytes (``read(n)``), by copying them.

    For an input stream without ``readinto`` (a WSGI server's, a test's).
    """

    def readinto(view: memoryview) -> int:
        data = read(len(view))
        view[: len(data)] = data
        return len(data)

    return readinto


def _md5_hex(value: str) -> str:
    value = value.strip()
    if re.fullmatch(r"[0-9a-fA-F]{32}", value):
        return value.lower()
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 16:
        raise exception.BadRequest(reason="Content-MD5 must be an MD5 digest, in hex or base64.")
    return raw.hex()


@dataclasses.dataclass
class Download:
    """What a download request gets: the data's MD5 and the bytes asked for.

    ``body`` is what the web server sends: the store's reader (which it may
    send with ``sendfile``) for small transfers, a :class:`ReadAhead` of it
    for large ones, ``None`` for an image without data.  ``partial`` tells a
    range answer (206) from a whole one.
    """

    checksum: str | None
    body: DataReader | ReadAhead | None
    offset: int = 0
    length: int = 0
    size: int = 0
    partial: bool = False

    @property
    def content_range(self) -> str:
        """Return the ``Content-Range`` value of a range answer (``bytes 0-99/1000``)."""
        return f"bytes {self.offset}-{self.offset + self.length - 1}/{self.size}"


@dataclasses.dataclass(slots=True)
class _Heartbeat:
    """Refresh an upload's heartbeat when *interval* seconds have passed since the last.

    Called once per chunk, it costs a clock read; the database sees at most
    one update per interval.
    """

    service: ImageService
    image_id: str
    upload_id: str
    interval: float
    clock: Callable[[], float]
    # The claim itself set the first heartbeat.
    due: float = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        self.due = self.clock() + self.interval

    def __call__(self) -> None:
        now = self.clock()
        if now >= self.due:
            self.due = now + self.interval
            self.service.heartbeat_upload(self.image_id, self.upload_id)


class _Closed(Exception):
    """The upload stopped while its reader waited for a free buffer."""


class _Buffers:
    """The page-aligned buffers an upload's chunks are read into, used in turn.

    A chunk is read into the next buffer of the ring, and handed to every
    consumer (the store's writer, and each hash thread when the upload is
    threaded) as a slice of it, with no copy.  Each consumer takes the
    chunks in order and calls :meth:`release` with its number once done
    with one; a buffer is given out again only when every consumer has
    released the chunk it held, so the reader is at most ``count`` chunks
    ahead of the slowest consumer and memory stays at ``count`` buffers.
    The buffers are anonymous memory maps (page-aligned, so a store may
    write them with ``O_DIRECT`` as they are).

    :param size: bytes per buffer.
    :param count: buffers in the ring.
    :param consumers: how many consumers release each chunk.
    """

    def __init__(self, size: int, count: int, consumers: int) -> None:
        self._blocks = [memoryview(mmap.mmap(-1, max(1, size))) for _ in range(count)]
        self._released = [0] * consumers
        self._taken = 0
        self._closed = False
        #: The release count the reader waits for, while it waits.
        self._wanted: int | None = None
        self._changed = threading.Condition()

    def take(self) -> memoryview:
        """Return the next buffer, once every consumer is done with its last chunk.

        :raises _Closed: :meth:`close` was called.
        """
        reusable = self._taken - len(self._blocks) + 1
        with self._changed:
            while not self._closed and min(self._released) < reusable:
                self._wanted = reusable
                self._changed.wait()
            self._wanted = None
            if self._closed:
                raise _Closed()
            block = self._blocks[self._taken % len(self._blocks)]
            self._taken += 1
        return block

    def release(self, consumer: int) -> None:
        """Tell that *consumer* is done with its oldest chunk."""
        with self._changed:
            self._released[consumer] += 1
            # Wake the reader only when the buffer it waits for is free: a
            # wake-up per release cost the worker three thread switches a chunk.
            if self._wanted is not None and min(self._released) >= self._wanted:
                self._changed.notify_all()

    def close(self) -> None:
        """Stop giving out buffers: a :meth:`take` waiting or to come raises."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()


#: The consumer number of the store's writer in :class:`_Buffers`; the hash
#: threads follow it.
_WRITER = 0


class _Digests:
    """Size and hashes of a stream, updated chunk by chunk.

    With *buffers*, each hash runs in a thread of its own, fed the chunks
    through a queue and releasing each one to *buffers* once hashed, as
    consumer 1, 2, ...: hashlib releases the GIL on large buffers, so MD5
    and the multihash run beside each other, the socket reads and the file
    writes instead of after them.  The queues hold slices of the buffers
    (no copies); *buffers* bounds how many.
    """

    _DONE = memoryview(b"")

    def __init__(self, algorithm: str, extra: set[str], *, buffers: _Buffers | None) -> None:
        self.size = 0
        self.hashes: dict[str, Any] = {
            "md5": hashlib.md5(usedforsecurity=False),
            "multihash": hashlib.new(algorithm),
            **{name: hashlib.new(name) for name in extra},
        }
        self._queues: list[queue.SimpleQueue[memoryview]] = []
        self._threads: list[threading.Thread] = []
        if buffers is not None:
            for number, digest in enumerate(self.hashes.values(), start=_WRITER + 1):
                feed: queue.SimpleQueue[memoryview] = queue.SimpleQueue()
                thread = threading.Thread(
                    target=self._consume,
                    args=(digest, feed, partial(buffers.release, number)),
                    name="image-hash",
                    daemon=True,
                )
                thread.start()
                self._queues.append(feed)
                self._threads.append(thread)

    @classmethod
    def _consume(
        cls, digest: Any, feed: queue.SimpleQueue[memoryview], release: Callable[[], None]
    ) -> None:
        while (data := feed.get()) is not cls._DONE:
            digest.update(data)
            release()

    def update(self, data: memoryview) -> None:
        """Count and hash one chunk (queued to the hash threads when threaded)."""
        self.size += len(data)
        if self._queues:
            for feed in self._queues:
                feed.put(data)
        else:
            for digest in self.hashes.values():
                digest.update(data)

    def finish(self) -> None:
        """Wait until every chunk given so far is hashed; stop the threads."""
        for feed in self._queues:
            feed.put(self._DONE)
        for thread in self._threads:
            thread.join()
        self._queues = []
        self._threads = []

    def hexdigest(self, name: str) -> str:
        """Return the hex digest of ``md5``, ``multihash`` or a declared algorithm."""
        return self.hashes[name].hexdigest()


_END = object()
_Chunk = TypeVar("_Chunk", bytes, memoryview)


def _prefetched(
    items: Generator[_Chunk], depth: int = 2, *, on_stop: Callable[[], None] | None = None
) -> Generator[_Chunk]:
    """Run *items* in a thread of its own, at most *depth* items ahead.

    The body is read from the socket while the store writes earlier chunks.
    An exception raised by *items* is raised here, to the consumer; when the
    consumer stops early, *on_stop* is called (to wake a producer that waits
    for something else than this hand-off), the thread stops after the item
    it is producing and is joined before this generator returns, so nothing
    touches the request afterwards.
    """
    handoff: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def offer(item: Any) -> bool:
        while not stop.is_set():
            try:
                handoff.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not offer(item):
                    return
            offer(_END)
        except BaseException as ex:  # noqa: BLE001 - re-raised in the consumer
            offer(ex)

    thread = threading.Thread(target=produce, name="image-read", daemon=True)
    thread.start()
    try:
        while (item := handoff.get()) is not _END:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        if on_stop is not None:
            on_stop()
        thread.join()
        items.close()


def _released(chunks: Generator[memoryview], buffers: _Buffers) -> Generator[memoryview]:
    """Yield *chunks*; release each to *buffers* as the writer when the next is asked for.

    A store is done with a chunk when it asks for the next one (see
    :meth:`~nimbus.drivers.image.base.ImageStore.add`).  Closing this
    closes *chunks*.
    """
    try:
        for chunk in chunks:
            yield chunk
            buffers.release(_WRITER)
    finally:
        chunks.close()


class ReadAhead:
    """A download's data as an iterable of chunks, read a few chunks ahead in a thread.

    A thread reads the store while the web server sends earlier chunks, so
    the disk stays busy.  ``sendfile`` saves a copy but reads the file only
    as fast as the socket drains: on the 2-core development VM, eight cold
    reads of a 1 GiB file to a loopback client took a median 1.65 GB/s this
    way and 1.08 GB/s with ``sendfile`` (dd alone: 2.07 GB/s).  At most
    *depth* + 2 chunks are in memory.  ``close`` (the WSGI server calls it
    when the response ends, complete or not) stops the thread and closes
    the reader.
    """

    def __init__(self, reader: DataReader, chunk_size: int, depth: int = 1) -> None:
        self._reader = reader
        self._chunks = _prefetched(self._read(chunk_size), depth)

    def _read(self, chunk_size: int) -> Generator[bytes]:
        while data := self._reader.read(chunk_size):
            yield data

    def __iter__(self) -> Iterator[bytes]:
        return self._chunks

    def close(self) -> None:
        """Stop reading ahead and close the store's reader."""
        try:
            self._chunks.close()
        finally:
            self._reader.close()


class ImageData:
    """Upload and download image data for the API.

    :param service: the image service (records, policy, store, notifier).
    :param clock: monotonic seconds, for the upload heartbeat's interval.
    """

    def __init__(
        self, service: ImageService, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.service = service
        self.conf = service.conf
        self.store = service.store
        self._clock = clock

    # -- upload --------------------------------------------------------------

    def upload(
        self,
        ctx: RequestContext,
        image_id: str,
        readinto: Callable[[memoryview], int],
        *,
        content_length: int | None,
        content_md5: str | None = None,
        stage: bool = False,
        store_id: str | None = None,
    ) -> dict[str, Any]:
        """Store an image's data from *readinto* and make the image active.

        Staged data (``PUT /v2/images/{id}/stage``) takes the same path, the
        storage quota and the recovery of dead uploads included, and leaves
        the image ``uploading`` instead, for an import to activate.

        :param readinto: reads the next bytes of the request body into the
            buffer it is given (at most its length) and returns how many;
            0 at the body's end.
        :param content_length: the declared body length, if any.
        :param content_md5: a declared MD5 of the data (hex or base64).
        :param stage: stage the data for a ``glance-direct`` import.
        :param store_id: the store to write to (``X-Image-Meta-Store``); the
            default store if ``None``.
        :returns: the active (or, staged, the uploading) image.
        :raises Conflict: the image is not ``queued`` (another upload holds it),
            or this upload lost it for sending nothing for ``upload_stale_after``.
        :raises OverLimit: past the size cap or the project's storage quota.
        :raises BadRequest: the body ended early, or a checksum does not match.
        :raises ValidationError: the data is not in the declared disk format.
        :raises BadRequest: *store_id* names no enabled store.
        """
        conf = self.conf.image
        store_id = self.service.stores.check(store_id) if store_id is not None else None
        store = self.service.store_of(store_id)
        if content_length is not None and content_length > conf.image_size_cap:
            raise exception.OverLimit(
                reason=f"Image size {content_length} is over the limit of {conf.image_size_cap}"
                " bytes."
            )
        expected_md5 = _md5_hex(content_md5) if content_md5 else None
        claim = self.service.claim_upload(ctx, image_id, content_length)
        heartbeat = _Heartbeat(
            self.service, image_id, claim.upload_id, conf.upload_heartbeat_interval, self._clock
        )
        stored: StoredData | None = None
        try:
            large = content_length is None or content_length >= _THREADED_CHUNKS * conf.chunk_size
            extra = {name for name in claim.declared if name != "md5"}
            if large:
                # The writer, then one hash thread per digest.
                buffers = _Buffers(conf.chunk_size, _BUFFERS, 1 + 2 + len(extra))
            else:
                # One thread: the chunk is hashed before the store writes it.
                size = conf.chunk_size if content_length is None else content_length
                buffers = _Buffers(min(conf.chunk_size, size), 1, 1)
            digests = _Digests(conf.hashing_algorithm, extra, buffers=buffers if large else None)
            chunks: Generator[memoryview] | None = None
            try:
                inspector = FormatInspector(claim.disk_format)
                chunks = self._chunks(
                    readinto, content_length, claim, digests, inspector, heartbeat, buffers
                )
                if large:
                    chunks = _prefetched(chunks, on_stop=buffers.close)
                chunks = _released(chunks, buffers)
                stored = store.add(image_id, chunks)
            finally:
                if chunks is not None:
                    # Stop (and join) the reading thread now, not when the
                    # traceback that may hold the generator goes.
                    chunks.close()
                digests.finish()
            inspection = inspector.finish(stored.size)
            self._verify(digests, expected_md5, claim.declared)
            values = {
                "status": "uploading" if stage else "active",
                "size": stored.size,
                "virtual_size": inspection.virtual_size,
                "checksum": digests.hexdigest("md5"),
                "os_hash_algo": conf.hashing_algorithm,
                "os_hash_value": digests.hexdigest("multihash"),
                "location": stored.location,
                "store": store_id or self.service.stores.default,
                "upload_id": None,
                "reserved_size": None,
                "updated_at": utcnow(),
            }
            location = stored.location
            image = self.service.finish_upload(image_id, claim.upload_id, values)
        except BaseException:
            if stored is not None:
                self.service.delete_data(stored.location, store_id)
            self.service.release_upload(image_id, claim.upload_id)
            raise
        LOG.info("Stored %d bytes of image %s at %s", values["size"], printable(image_id), location)
        self.service.notify(ctx, "image.upload", image)
        if not stage:
            self.service.notify(ctx, "image.activate", image)
        return image

    def _chunks(
        self,
        readinto: Callable[[memoryview], int],
        content_length: int | None,
        claim: UploadClaim,
        digests: _Digests,
        inspector: FormatInspector,
        heartbeat: Callable[[], None],
        buffers: _Buffers,
    ) -> Generator[memoryview]:
        chunk_size = self.conf.image.chunk_size
        cap = self.conf.image.image_size_cap
        # A body of unknown length holds its quota as it grows, in steps.
        reserved = None if claim.remaining is None or content_length is not None else 0
        ended = False
        while not ended:
            want = chunk_size
            if content_length is not None:
                want = min(want, content_length - digests.size)
                if want <= 0:
                    break
            block = buffers.take()
            count = _fill(readinto, block[:want], heartbeat)
            if not count:
                break
            # A short chunk means the body ended.
            ended = count < want
            data = block[:count]
            digests.update(data)
            if digests.size > cap:
                raise exception.OverLimit(reason=f"The image is over the limit of {cap} bytes.")
            if reserved is not None and digests.size > reserved:
                reserved = self.service.reserve_upload(
                    claim.image_id,
                    claim.upload_id,
                    digests.size,
                    digests.size + _RESERVE_CHUNKS * chunk_size,
                )
            elif claim.remaining is not None and digests.size > claim.remaining:
                raise exception.QuotaExceeded(
                    resource="image storage",
                    requested=digests.size,
                    used=claim.used,
                    limit=self.conf.image.image_storage_quota,
                )
            inspector.feed(data)
            yield data
        if content_length is not None and digests.size != content_length:
            raise exception.BadRequest(
                reason=f"The upload ended after {digests.size} of the {content_length} bytes"
                " declared; the image was not stored."
            )

    @staticmethod
    def _verify(digests: _Digests, expected_md5: str | None, declared: dict[str, str]) -> None:
        wanted = dict(declared)
        if expected_md5 is not None:
            wanted["md5"] = expected_md5
        for name, value in wanted.items():
            actual = digests.hexdigest(name)
            if actual != value.strip().lower():
                raise exception.BadRequest(
                    reason=f"The data's {name} is {actual}, not the declared {value}; the image"
                    " was not stored."
                )

    def recover(self, *, older_than: float) -> int:
        """Put images whose upload is dead back to ``queued``; remove its partial data.

        An upload is dead when its heartbeat is *older_than* seconds old.
        The store's partial writes are removed by the same age (the store
        tells a write's age by its last progress, e.g. a file's mtime), so
        a live upload keeps its partial data as it keeps its image.

        :param older_than: seconds since the upload's last heartbeat; 0
            takes every upload, live or not (only safe when no process of
            the cloud can be uploading, as before ``nimbus up`` serves).
        :returns: how many images were put back.
        """
        count = self.service.recover_stale_uploads(older_than=older_than)
        for store_id in self.service.stores:
            store = self.service.stores.stores[store_id]
            if Capability.PURGE_PARTIAL in store.capabilities:
                store.purge_partial(older_than=older_than)
        if count:
            LOG.warning("Put %d image(s) stuck in saving back to queued", count)
        return count

    # -- download ------------------------------------------------------------

    def download(
        self, ctx: RequestContext, image_id: str, range_header: str | None = None
    ) -> Download:
        """Return the image and a reader of its data (or the range asked for).

        :raises NotFound: no such image visible to the caller.
        :raises Forbidden: policy, or the image is deactivated (admins excepted).
        :raises RangeNotSatisfiable: the range lies outside the data.
        """
        row = self.service.load_for_download(ctx, image_id)
        if row.status == "deactivated" and not ctx.is_admin:
            raise exception.Forbidden(
                message="The requested image has been deactivated. Image data download is"
                " prohibited."
            )
        if row.status not in ("active", "deactivated") or not row.locations:
            return Download(row.checksum, None)
        size = row.size or 0
        window = parse_range(range_header, size)
        offset, length = window if window is not None else (0, size)
        reader = self._open(row, offset, length)
        chunk_size = self.conf.image.chunk_size
        if length < _THREADED_CHUNKS * chunk_size:
            body: DataReader | ReadAhead = reader
        else:
            body = ReadAhead(reader, chunk_size)
        return Download(
            row.checksum,
            body,
            offset=offset,
            length=length,
            size=size,
            partial=window is not None,
        )

    def _open(self, row: StoredImage, offset: int, length: int) -> DataReader:
        """Return a reader of the data from the first store that has it (the default first)."""
        missing: exception.NotFound | None = None
        for store_id, location in row.locations:
            try:
                return self.service.store_of(store_id).get(location, offset=offset, length=length)
            except exception.NotFound as ex:
                LOG.warning("Image data at %s (store %s) is missing", location, store_id)
                missing = ex
        assert missing is not None
        raise missing
