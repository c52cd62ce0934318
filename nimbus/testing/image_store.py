"""The contract every image store must pass, nimbus's own and third parties'.

Subclass :class:`ImageStoreContract` in a test module, name the subclass
``Test...`` and give it a ``store`` fixture; pytest then runs every contract
test against that store::

    import pytest
    from nimbus.conf import new_config
    from nimbus.testing.image_store import ImageStoreContract


    class TestMyStore(ImageStoreContract):
        @pytest.fixture
        def store(self, clock, tmp_path):
            conf = new_config()
            conf([], default_config_files=[])
            conf.set_override("state_path", str(tmp_path))
            return MyStore(conf, now=clock)

        @pytest.fixture
        def partial_writes(self, store):
            return lambda: {upload.key for upload in store.ex_pending_uploads()}

What the fixtures must give:

* ``store``: a fresh store holding no image data, built on a config object
  of its own.  A store with
  :attr:`~nimbus.drivers.image.types.Capability.PURGE_PARTIAL` must be
  built with ``now=clock`` (a :class:`FakeTime`, seconds since the epoch),
  so that the purge test can make a stalled upload old.
* ``partial_writes``: a callable returning the names of what unfinished
  uploads left in the store: temporary files, pending multipart uploads,
  rows.  The tests that break an upload assert it returns an empty set, so
  it must look where the store really keeps uploads in progress (the
  ``file`` store's lists the hidden upload files of its directory).  There
  is no default: without it those tests fail at set-up, saying so.

Class attributes tune the heavier tests: set :attr:`~ImageStoreContract.
stores_in_memory` for a store that keeps data in memory (the test of a
streamed 64 MiB upload is then skipped), or lower
:attr:`~ImageStoreContract.large_image_size` for a slow remote store.

Tests of optional operations run only when the store's ``capabilities``
include them and are reported as skipped otherwise; a store that lacks
``PURGE_PARTIAL`` must raise :class:`~nimbus.exception.OperationNotSupported`
from ``purge_partial``, and that is tested too: on the store itself when it
lacks the capability, and otherwise on a copy of it whose class declares it
no more (the ``narrowed`` fixture, :func:`~nimbus.testing.capabilities.
without_capability`; override it if a shallow copy of your store cannot
work).  :class:`~nimbus.drivers.image.base.ImageStore` guards the optional
operations of every subclass, so that copy refuses what it inherits.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import threading
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import ClassVar, TypeVar

import pytest
from oslo_config import cfg

from nimbus import exception
from nimbus.drivers.image.base import OPTIONAL_OPERATIONS, ImageStore
from nimbus.drivers.image.types import Capability, Capacity, DataReader
from nimbus.testing import capabilities as _capabilities

__all__ = [
    "ChunkSourceError",
    "FakeTime",
    "ImageStoreContract",
    "assert_unsupported",
    "needs",
    "without_capability",
]

S = TypeVar("S", bound=ImageStore)

#: Harmless arguments for each optional operation, for the unsupported checks.
_OPTIONAL_CALLS: dict[str, _capabilities.Call] = {"purge_partial": ((), {"older_than": 0})}

#: The capabilities that guard operations, each tested on its own.
_GUARDS = sorted(set(OPTIONAL_OPERATIONS.values()), key=lambda cap: cap.value)

#: Data of the range tests: 10,240 bytes, each position distinguishable.
_DATA = bytes(range(256)) * 40
#: Chunk sizes of the multi-chunk tests, odd on purpose, with empty chunks.
_ODD_SIZES = (1, 7, 0, 4095, 4097, 65537, 13, 0, 100_003)


class ChunkSourceError(Exception):
    """Raised by the contract's failing chunk iterators."""


class FakeTime:
    """A clock in seconds since the epoch, as ``time.time`` counts.

    It starts at the real time when it is made and moves only when told:
    pass it as a store's ``now``.
    """

    def __init__(self, start: float | None = None) -> None:
        self._now = time.time() if start is None else start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        """Return the current fake time."""
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        """Move the clock *seconds* forward."""
        with self._lock:
            self._now += seconds


#: Marks a test as needing capabilities; it is skipped without them.
needs = _capabilities.needs


def assert_unsupported(store: ImageStore, capability: Capability) -> None:
    """Check that each operation needing *capability* raises ``OperationNotSupported``.

    :param store: a store whose ``capabilities`` lack *capability*.
    :raises pytest.fail.Exception: an operation ran instead.
    """
    _capabilities.assert_unsupported(store, capability, OPTIONAL_OPERATIONS, _OPTIONAL_CALLS)


def without_capability(store: S, capability: Capability) -> S:
    """Return a copy of *store* that declares *capability* no more.

    :param store: the store to copy; the copy shares its state.
    """
    return _capabilities.without_capability(store, {capability})


def _new_id() -> str:
    return str(uuid.uuid4())


def _pieces(data: bytes, sizes: Iterable[int]) -> Iterator[bytes]:
    """Yield *data* cut at *sizes* (repeated as needed)."""
    sizes = tuple(sizes)
    pos = index = 0
    while pos < len(data):
        size = sizes[index % len(sizes)]
        yield data[pos : pos + size]
        pos += size
        index += 1


def _failing(data: bytes, error: BaseException, chunk_size: int = 4096) -> Iterator[bytes]:
    """Yield *data* in chunks, then raise *error*."""
    yield from _pieces(data, [chunk_size])
    raise error


def _drain(reader: DataReader, size: int) -> list[bytes]:
    """Read *reader* to its end with ``read(size)``; return the pieces."""
    pieces = []
    while piece := reader.read(size):
        assert len(piece) <= size, f"read({size}) returned {len(piece)} bytes"
        pieces.append(piece)
    return pieces


def _read(store: ImageStore, location: str, **span: int | None) -> bytes:
    """Return all the bytes ``store.get(location, **span)`` gives."""
    with contextlib.closing(store.get(location, **span)) as reader:
        return reader.read()


class ImageStoreContract:
    """Contract tests of :class:`~nimbus.drivers.image.base.ImageStore`.

    Subclasses provide the ``store`` fixture (see the module docstring).
    """

    #: True for a store that keeps image data in memory: the bounded-memory
    #: test of a large upload is then skipped.
    stores_in_memory: ClassVar[bool] = False
    #: Bytes of the large streamed upload, and of each of its chunks.
    large_image_size: ClassVar[int] = 64 * 1024 * 1024
    large_chunk_size: ClassVar[int] = 1024 * 1024
    #: The most memory (traced by ``tracemalloc``) the large upload may use.
    memory_limit: ClassVar[int] = 16 * 1024 * 1024
    #: Threads of the concurrent-upload test, one image each.
    concurrent_threads: ClassVar[int] = 8

    # -- fixtures -----------------------------------------------------------

    @pytest.fixture
    def store(self) -> ImageStore:
        """The store under test: subclasses must override this fixture."""
        raise NotImplementedError("the contract subclass must provide a 'store' fixture")

    @pytest.fixture
    def clock(self) -> FakeTime:
        """A fake clock for the ``store`` fixture to pass as ``now=``."""
        return FakeTime()

    @pytest.fixture
    def partial_writes(self, store: ImageStore) -> Callable[[], set[str]]:
        """Return a callable listing what unfinished uploads left in *store*.

        Subclasses must override this fixture: only the store knows where
        it keeps uploads in progress, and a default that sees nothing would
        let every "nothing left behind" check pass.
        """
        raise NotImplementedError(
            "the contract subclass must provide a 'partial_writes' fixture that lists "
            "what unfinished uploads left in the store (temporary files, pending "
            "multipart uploads, rows); see nimbus.testing.image_store"
        )

    @pytest.fixture
    def narrowed(self, store: ImageStore) -> Callable[[Capability], ImageStore]:
        """Return a factory of copies of *store* that lack one capability."""
        return lambda capability: without_capability(store, capability)

    @pytest.fixture(autouse=True)
    def _capability_gate(self, request: pytest.FixtureRequest) -> None:
        _capabilities.skip_unless_offered(request, "store")

    def _deleted_location(self, store: ImageStore, image_id: str) -> str:
        """Return where *image_id*'s data would be, with nothing stored there.

        The only way to know a location is to store something: stores that
        derive it from the image id give the same one again for the next
        upload, which makes the "nothing readable" checks meaningful.
        """
        location = store.add(image_id, [b"placeholder"]).location
        store.delete(location)
        return location

    # -- the class itself -----------------------------------------------------

    def test_is_an_image_store(self, store: ImageStore) -> None:
        assert isinstance(store, ImageStore)

    def test_summary_line_is_one_sentence(self, store: ImageStore) -> None:
        # ``nimbus plugins`` prints the first docstring line to operators.
        doc = (type(store).__doc__ or "").strip()
        assert doc, "the store class needs a docstring"
        first = doc.splitlines()[0].strip()
        assert first.endswith("."), first
        assert len(first) <= 79, first

    def test_knows_its_store_id(self, store: ImageStore) -> None:
        # Several stores (``[image] enabled_stores``) tell theirs apart by id.
        assert isinstance(store.store_id, str) and store.store_id

    def test_store_options_are_oslo_options(self, store: ImageStore) -> None:
        options = type(store).store_options("contract")
        assert all(isinstance(opt, cfg.Opt) for opt in options)
        assert len({opt.dest for opt in options}) == len(options)

    def test_takes_a_store_id_and_an_option_group(self, store: ImageStore) -> None:
        # The constructor of several stores: a store still written for the
        # older ``__init__(conf)`` loads once only (see nimbus.image.stores).
        options = list(type(store).store_options("contract"))
        group = "image_store_contract" if options else None
        if options:
            store.conf.register_group(cfg.OptGroup("image_store_contract"))
            store.conf.register_opts(options, group="image_store_contract")
        try:
            other = type(store)(store.conf, store_id="contract", options_group=group)
        except TypeError as ex:
            pytest.fail(f"{type(store).__name__} takes no store_id/options_group: {ex}")
        assert (other.store_id, other.options_group) == ("contract", group)

    def test_capabilities_are_a_frozenset_of_capability(self, store: ImageStore) -> None:
        caps = type(store).capabilities
        assert isinstance(caps, frozenset)
        assert all(isinstance(cap, Capability) for cap in caps)

    @pytest.mark.parametrize("capability", _GUARDS, ids=lambda cap: cap.value)
    def test_missing_capability_raises_operation_not_supported(
        self,
        store: ImageStore,
        narrowed: Callable[[Capability], ImageStore],
        capability: Capability,
    ) -> None:
        # A store that offers the capability is checked through a copy that
        # drops it, so the rule is tested on every store.
        lacking = narrowed(capability) if capability in store.capabilities else store
        assert_unsupported(lacking, capability)

    # -- storing and reading back ---------------------------------------------

    def test_round_trip_of_small_data(self, store: ImageStore) -> None:
        stored = store.add(_new_id(), [b"hello, image"])
        assert isinstance(stored.location, str) and stored.location
        assert stored.size == len(b"hello, image")
        assert _read(store, stored.location) == b"hello, image"

    def test_round_trip_of_empty_data(self, store: ImageStore) -> None:
        stored = store.add(_new_id(), [])
        assert stored.size == 0
        assert _read(store, stored.location) == b""
        only_empty_chunks = store.add(_new_id(), [b"", b""])
        assert only_empty_chunks.size == 0
        assert _read(store, only_empty_chunks.location) == b""

    def test_round_trip_of_odd_sized_chunks(self, store: ImageStore) -> None:
        data = os.urandom(sum(_ODD_SIZES) * 2)
        stored = store.add(_new_id(), _pieces(data, _ODD_SIZES))
        assert _read(store, stored.location) == data

    def test_reported_size_is_the_number_of_bytes(self, store: ImageStore) -> None:
        for size in (1, 4096, 4097, 300_001):
            stored = store.add(_new_id(), _pieces(b"z" * size, _ODD_SIZES))
            assert stored.size == size
            assert len(_read(store, stored.location)) == size

    def test_add_consumes_a_generator_once(self, store: ImageStore) -> None:
        calls = []

        def chunks() -> Iterator[bytes]:
            calls.append("started")
            yield b"abc"
            yield b"def"

        stored = store.add(_new_id(), chunks())
        assert calls == ["started"]
        assert _read(store, stored.location) == b"abcdef"

    def test_chunks_from_one_reused_buffer_are_stored_as_they_were(self, store: ImageStore) -> None:
        """The service hands out memoryviews of buffers it reuses once the next is asked for."""
        data = os.urandom(sum(_ODD_SIZES) * 2)
        buffer = bytearray(max(_ODD_SIZES))

        def chunks() -> Iterator[memoryview]:
            for piece in _pieces(data, _ODD_SIZES):
                view = memoryview(buffer)[: len(piece)]
                view[:] = piece
                yield view
                view[:] = b"\xff" * len(piece)  # reused: what a store kept is gone

        stored = store.add(_new_id(), chunks())
        assert stored.size == len(data)
        assert _read(store, stored.location) == data

    # -- ranges -----------------------------------------------------------------

    def test_read_from_an_offset_to_the_end(self, store: ImageStore) -> None:
        location = store.add(_new_id(), _pieces(_DATA, _ODD_SIZES)).location
        for offset in (0, 1, 255, 4096, len(_DATA) - 1):
            assert _read(store, location, offset=offset) == _DATA[offset:], offset

    def test_read_a_range_with_offset_and_length(self, store: ImageStore) -> None:
        location = store.add(_new_id(), [_DATA]).location
        for offset, length in ((0, 1), (0, 4096), (10, 20), (4095, 2), (100, len(_DATA) - 100)):
            expected = _DATA[offset : offset + length]
            assert _read(store, location, offset=offset, length=length) == expected

    def test_length_past_the_end_stops_at_the_end(self, store: ImageStore) -> None:
        location = store.add(_new_id(), [_DATA]).location
        assert _read(store, location, length=len(_DATA) + 1000) == _DATA
        assert _read(store, location, offset=len(_DATA) - 3, length=100) == _DATA[-3:]

    def test_length_zero_reads_nothing(self, store: ImageStore) -> None:
        location = store.add(_new_id(), [_DATA]).location
        assert _read(store, location, offset=5, length=0) == b""

    def test_offset_at_the_end_reads_nothing(self, store: ImageStore) -> None:
        location = store.add(_new_id(), [_DATA]).location
        assert _read(store, location, offset=len(_DATA)) == b""
        assert _read(store, location, offset=len(_DATA), length=10) == b""

    def test_offset_past_the_end_reads_nothing(self, store: ImageStore) -> None:
        location = store.add(_new_id(), [_DATA]).location
        assert _read(store, location, offset=len(_DATA) + 1) == b""
        assert _read(store, location, offset=len(_DATA) * 10, length=5) == b""

    def test_read_in_pieces_then_the_rest(self, store: ImageStore) -> None:
        location = store.add(_new_id(), [_DATA]).location
        with contextlib.closing(store.get(location, offset=3, length=9000)) as reader:
            head = reader.read(1)
            assert len(head) <= 1
            middle = reader.read(1000)
            assert len(middle) <= 1000
            rest = reader.read()
            assert head + middle + rest == _DATA[3:9003]
            assert reader.read() == b""
            assert reader.read(10) == b""

    def test_read_to_the_end_in_fixed_pieces(self, store: ImageStore) -> None:
        location = store.add(_new_id(), [_DATA]).location
        with contextlib.closing(store.get(location, offset=10, length=5000)) as reader:
            assert b"".join(_drain(reader, 333)) == _DATA[10:5010]

    def test_several_readers_of_one_image_at_once(self, store: ImageStore) -> None:
        location = store.add(_new_id(), [_DATA]).location
        with (
            contextlib.closing(store.get(location)) as first,
            contextlib.closing(store.get(location, offset=100)) as second,
        ):
            assert b"".join(_drain(first, 1000)) == _DATA
            assert second.read() == _DATA[100:]

    # -- replacing, several images, deleting ---------------------------------

    def test_add_replaces_earlier_data_of_the_same_image(self, store: ImageStore) -> None:
        image_id = _new_id()
        old = store.add(image_id, [b"old data, longer than the new"])
        new = store.add(image_id, [b"new data"])
        assert new.size == len(b"new data")
        assert _read(store, new.location) == b"new data"
        if old.location != new.location:
            # The earlier data is gone, not merely hidden.
            with pytest.raises(exception.NotFound):
                _read(store, old.location)

    def test_replacement_is_never_half_visible(self, store: ImageStore) -> None:
        image_id = _new_id()
        old = store.add(image_id, [b"old" * 1000])
        seen = []

        def new_data() -> Iterator[bytes]:
            yield b"new" * 1000
            seen.append(_read(store, old.location))
            yield b"new" * 1000

        new = store.add(image_id, new_data())
        assert seen == [b"old" * 1000]
        assert _read(store, new.location) == b"new" * 2000

    def test_data_is_invisible_until_the_upload_ends(self, store: ImageStore) -> None:
        image_id = _new_id()
        location = self._deleted_location(store, image_id)
        outcomes = []

        def chunks() -> Iterator[bytes]:
            yield b"x" * 5000
            try:
                outcomes.append(_read(store, location))
            except exception.NotFound:
                outcomes.append("not found")
            yield b"y" * 5000

        stored = store.add(image_id, chunks())
        assert outcomes == ["not found"]
        assert _read(store, stored.location) == b"x" * 5000 + b"y" * 5000

    def test_images_are_independent(self, store: ImageStore) -> None:
        first = store.add(_new_id(), [b"first image"])
        second = store.add(_new_id(), [b"second image"])
        assert first.location != second.location
        assert _read(store, first.location) == b"first image"
        assert _read(store, second.location) == b"second image"
        store.delete(first.location)
        assert _read(store, second.location) == b"second image"

    def test_deleted_data_is_not_found(self, store: ImageStore) -> None:
        stored = store.add(_new_id(), [_DATA])
        store.delete(stored.location)
        with pytest.raises(exception.NotFound):
            store.get(stored.location)

    def test_deleting_twice_is_fine(self, store: ImageStore) -> None:
        stored = store.add(_new_id(), [_DATA])
        store.delete(stored.location)
        store.delete(stored.location)
        with pytest.raises(exception.NotFound):
            store.get(stored.location)

    def test_an_image_can_be_stored_again_after_delete(self, store: ImageStore) -> None:
        image_id = _new_id()
        store.delete(store.add(image_id, [b"first"]).location)
        again = store.add(image_id, [b"second"])
        assert _read(store, again.location) == b"second"

    def test_unknown_location_is_not_found(self, store: ImageStore) -> None:
        for location in ("", "no-such-location", "nimbus-contract://no/such/image"):
            with pytest.raises(exception.NotFound):
                store.get(location)

    # -- failed uploads ---------------------------------------------------------

    @pytest.mark.parametrize("sent", [0, 1, 100_000], ids=["at-once", "after-1-byte", "later"])
    def test_failing_iterator_propagates_its_very_exception(
        self, store: ImageStore, partial_writes: Callable[[], set[str]], sent: int
    ) -> None:
        error = ChunkSourceError("the client went away")
        with pytest.raises(ChunkSourceError) as info:
            store.add(_new_id(), _failing(b"d" * sent, error))
        assert info.value is error
        assert partial_writes() == set()

    def test_failing_iterator_leaves_nothing_readable(
        self, store: ImageStore, partial_writes: Callable[[], set[str]]
    ) -> None:
        image_id = _new_id()
        location = self._deleted_location(store, image_id)
        with pytest.raises(ChunkSourceError):
            store.add(image_id, _failing(_DATA, ChunkSourceError("limit passed")))
        with pytest.raises(exception.NotFound):
            store.get(location)
        assert partial_writes() == set()

    def test_failing_iterator_keeps_earlier_data_of_the_image(
        self, store: ImageStore, partial_writes: Callable[[], set[str]]
    ) -> None:
        image_id = _new_id()
        old = store.add(image_id, [_DATA])
        with pytest.raises(ChunkSourceError):
            store.add(image_id, _failing(b"new" * 10_000, ChunkSourceError("limit passed")))
        assert _read(store, old.location) == _DATA
        assert partial_writes() == set()

    def test_store_works_after_a_failed_upload(self, store: ImageStore) -> None:
        image_id = _new_id()
        with pytest.raises(ChunkSourceError):
            store.add(image_id, _failing(_DATA, ChunkSourceError("once")))
        stored = store.add(image_id, [_DATA])
        assert _read(store, stored.location) == _DATA

    # -- space, size and concurrency ----------------------------------------------

    def test_capacity_reports_ints_or_none(self, store: ImageStore) -> None:
        capacity = store.capacity()
        assert isinstance(capacity, Capacity)
        for value in (capacity.total, capacity.free):
            assert value is None or (type(value) is int and value >= 0), value
        if capacity.total is not None and capacity.free is not None:
            assert capacity.free <= capacity.total

    def test_large_upload_streams_in_bounded_memory(
        self, store: ImageStore, partial_writes: Callable[[], set[str]]
    ) -> None:
        if self.stores_in_memory:
            pytest.skip(f"{store.name} keeps image data in memory")
        block = bytes(range(256)) * (self.large_chunk_size // 256)
        count = self.large_image_size // len(block)

        def stream() -> Iterator[bytes]:
            # The same buffer every time: only the store can make memory grow.
            for _ in range(count):
                yield block

        was_tracing = tracemalloc.is_tracing()
        if not was_tracing:
            tracemalloc.start()
        try:
            tracemalloc.reset_peak()
            before, _ = tracemalloc.get_traced_memory()
            stored = store.add(_new_id(), stream())
            _, peak = tracemalloc.get_traced_memory()
        finally:
            if not was_tracing:
                tracemalloc.stop()
        assert stored.size == count * len(block)
        assert peak - before < self.memory_limit, f"{peak - before} bytes for the upload"
        with contextlib.closing(store.get(stored.location)) as reader:
            data = b"".join(_drain(reader, len(block) * 4))
        assert len(data) == stored.size
        assert data == block * count
        assert partial_writes() == set()

    def test_concurrent_uploads_of_different_images(
        self, store: ImageStore, partial_writes: Callable[[], set[str]]
    ) -> None:
        threads = self.concurrent_threads
        start = threading.Barrier(threads)

        def upload(number: int) -> tuple[str, bytes]:
            data = f"image {number};".encode() * 20_000
            start.wait(timeout=30)
            stored = store.add(_new_id(), _pieces(data, [number * 1000 + 1, 65_536]))
            return stored.location, data

        with concurrent.futures.ThreadPoolExecutor(threads) as pool:
            results = list(pool.map(upload, range(threads)))
        assert len({location for location, _ in results}) == threads
        for location, data in results:
            assert _read(store, location) == data
        assert partial_writes() == set()

    # -- optional capabilities ------------------------------------------------------

    @needs(Capability.SENDFILE)
    def test_reader_fileno_is_positioned_at_the_offset(self, store: ImageStore) -> None:
        location = store.add(_new_id(), [_DATA]).location
        with contextlib.closing(store.get(location, offset=1000, length=500)) as reader:
            fd = reader.fileno()  # type: ignore[attr-defined]
            # gunicorn starts sendfile at the current position, and sends
            # min(file size - position, Content-Length) bytes.
            assert os.lseek(fd, 0, os.SEEK_CUR) == 1000
            assert os.fstat(fd).st_size - 1000 >= 500
            assert os.read(fd, 500) == _DATA[1000:1500]
        with contextlib.closing(store.get(location)) as reader:
            assert os.lseek(reader.fileno(), 0, os.SEEK_CUR) == 0  # type: ignore[attr-defined]

    @needs(Capability.SENDFILE)
    def test_reader_fileno_follows_reads(self, store: ImageStore) -> None:
        location = store.add(_new_id(), [_DATA]).location
        with contextlib.closing(store.get(location, offset=10)) as reader:
            assert len(reader.read(90)) == 90
            assert os.lseek(reader.fileno(), 0, os.SEEK_CUR) == 100  # type: ignore[attr-defined]

    @needs(Capability.PURGE_PARTIAL)
    def test_purge_partial_removes_only_old_unfinished_uploads(
        self, store: ImageStore, clock: FakeTime, partial_writes: Callable[[], set[str]]
    ) -> None:
        finished = store.add(_new_id(), [_DATA])
        started, release = threading.Event(), threading.Event()

        def stalled() -> Iterator[bytes]:
            yield b"s" * 10_000
            started.set()
            release.wait(timeout=30)
            raise ChunkSourceError("the client never came back")

        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            upload = pool.submit(store.add, _new_id(), stalled())
            try:
                assert started.wait(timeout=30)
                assert store.purge_partial(older_than=600) == 0
                clock.advance(3600)
                assert store.purge_partial(older_than=600) == 1
                assert store.purge_partial(older_than=600) == 0
            finally:
                release.set()
            with pytest.raises(ChunkSourceError):
                upload.result(timeout=30)
        assert _read(store, finished.location) == _DATA
        assert partial_writes() == set()
