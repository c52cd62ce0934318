"""The ``file`` image store against the contract, plus its own behaviour."""

from __future__ import annotations

import ctypes
import errno
import fcntl
import inspect
import mmap
import os
import random
import re
import stat
import threading
import time
from collections.abc import Callable, Iterator
from typing import ClassVar

import pytest
from oslo_config import cfg
from stevedore import DriverManager
from stevedore.extension import Extension

from nimbus import exception, registry
from nimbus.drivers.image import Capability, ImageStore
from nimbus.drivers.image import file as file_store
from nimbus.drivers.image.base import OPTIONAL_OPERATIONS
from nimbus.drivers.image.file import FileStore
from nimbus.testing.image_store import (
    ChunkSourceError,
    FakeTime,
    ImageStoreContract,
    assert_unsupported,
)
from nimbus.testing.waiting import wait_until

IMAGE_ID = "0b8e2a3c-8d6f-4f4e-9a57-3c0b2f1d9e10"
MIB = 1024 * 1024


def _hidden(store: FileStore) -> set[str]:
    return {name for name in os.listdir(store.datadir) if name.startswith(".")}


def _read(store: FileStore, location: str) -> bytes:
    with store.get(location) as reader:
        return reader.read()


class TestFileStore(ImageStoreContract):
    @pytest.fixture(params=[True, False], ids=["direct", "buffered"])
    def store(
        self, request: pytest.FixtureRequest, conf: cfg.ConfigOpts, clock: FakeTime
    ) -> FileStore:
        conf.set_override("direct_io", request.param, group="image_file_store")
        return FileStore(conf, now=clock)

    @pytest.fixture
    def partial_writes(self, store: FileStore) -> Callable[[], set[str]]:
        return store.ex_partial_writes


@pytest.fixture(params=[True, False], ids=["direct", "buffered"])
def store(request: pytest.FixtureRequest, conf: cfg.ConfigOpts) -> FileStore:
    conf.set_override("direct_io", request.param, group="image_file_store")
    return FileStore(conf)


@pytest.fixture
def fsync_calls() -> list[str]:
    """What the injected fsync flushed, in order: "file" or "directory"."""
    return []


def _counting_fsync(calls: list[str]) -> Callable[[int], None]:
    def fsync(fd: int) -> None:
        calls.append("directory" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")
        os.fsync(fd)

    return fsync


def _failing_fsync(code: int) -> Callable[[int], None]:
    def fsync(fd: int) -> None:
        raise OSError(code, os.strerror(code))

    return fsync


# -- set-up and loading ---------------------------------------------------------


def test_loads_through_its_entry_point(conf: cfg.ConfigOpts) -> None:
    store = registry.load_driver("nimbus.image.stores", "file", conf, expected=ImageStore)
    assert isinstance(store, FileStore)
    assert store.capabilities == {Capability.SENDFILE, Capability.PURGE_PARTIAL}


def test_datadir_comes_from_the_config(conf: cfg.ConfigOpts, tmp_path) -> None:
    conf.set_override("datadir", str(tmp_path / "elsewhere" / "images"), group="image_file_store")
    store = FileStore(conf)
    assert store.datadir == str(tmp_path / "elsewhere" / "images")
    assert os.path.isdir(store.datadir)


def test_missing_datadir_is_created_private(conf: cfg.ConfigOpts) -> None:
    store = FileStore(conf)
    assert store.datadir == os.path.join(conf.state_path, "images")
    assert stat.S_IMODE(os.stat(store.datadir).st_mode) == 0o700


def test_existing_datadir_keeps_its_mode(conf: cfg.ConfigOpts, tmp_path) -> None:
    datadir = tmp_path / "shared"
    datadir.mkdir(mode=0o750)
    os.chmod(datadir, 0o750)
    conf.set_override("datadir", str(datadir), group="image_file_store")
    FileStore(conf)
    assert stat.S_IMODE(os.stat(datadir).st_mode) == 0o750


def test_datadir_that_is_a_file_is_a_driver_error(conf: cfg.ConfigOpts, tmp_path) -> None:
    (tmp_path / "not-a-dir").write_bytes(b"")
    conf.set_override("datadir", str(tmp_path / "not-a-dir"), group="image_file_store")
    with pytest.raises(exception.DriverError) as info:
        FileStore(conf)
    assert info.value.kwargs["driver"] == "FileStore"


class SendfileOnly(FileStore):
    """The file store without its purge of abandoned uploads."""

    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.SENDFILE})


def test_a_narrower_subclass_refuses_what_it_inherits(conf: cfg.ConfigOpts) -> None:
    # Injected as a test-only store, the way a service would get it.
    manager = DriverManager.make_test_instance(
        Extension("sendfile-only", None, SendfileOnly, SendfileOnly(conf)),
        namespace="nimbus.image.stores",
    )
    store = manager.driver
    assert_unsupported(store, Capability.PURGE_PARTIAL)
    assert _read(store, store.add(IMAGE_ID, [b"data"]).location) == b"data"


def test_the_contract_check_fails_for_a_store_ignoring_its_capabilities(
    conf: cfg.ConfigOpts,
) -> None:
    class Careless(SendfileOnly):
        """A file store that purges although it says it cannot."""

    # Set after the class is made, so the base class never guarded it.
    Careless.purge_partial = inspect.unwrap(FileStore.purge_partial)  # type: ignore[method-assign]
    with pytest.raises(pytest.fail.Exception, match="purge_partial"):
        assert_unsupported(Careless(conf), Capability.PURGE_PARTIAL)


def test_every_optional_operation_is_guarded() -> None:
    optional = {
        name
        for name, member in vars(ImageStore).items()
        if inspect.isfunction(member)
        and not name.startswith("_")
        and not getattr(member, "__isabstractmethod__", False)
    }
    assert optional == set(OPTIONAL_OPERATIONS)


def test_upload_in_progress_is_listed(store: FileStore) -> None:
    seen = []

    def chunks() -> Iterator[bytes]:
        yield b"abc"
        seen.append((store.ex_partial_writes(), _hidden(store)))

    store.add(IMAGE_ID, chunks())
    [(names, hidden)] = seen
    assert names == hidden
    [name] = names
    assert name.startswith(f".{IMAGE_ID}.") and name.endswith(".partial")
    assert store.ex_partial_writes() == set()


# -- where and how data lands -----------------------------------------------------


def test_location_is_the_file_url_of_the_image(store: FileStore) -> None:
    stored = store.add(IMAGE_ID, [b"data"])
    path = os.path.join(store.datadir, IMAGE_ID)
    assert stored.location == "file://" + path
    assert os.path.isabs(path)
    with open(path, "rb") as f:
        assert f.read() == b"data"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_upload_lands_atomically_under_a_hidden_name(store: FileStore) -> None:
    final = os.path.join(store.datadir, IMAGE_ID)
    midway = []

    def chunks() -> Iterator[bytes]:
        yield b"a" * 70_000
        midway.append((os.path.exists(final), _hidden(store)))
        yield b"b" * 70_000

    store.add(IMAGE_ID, chunks())
    [(final_existed, hidden)] = midway
    assert not final_existed
    [name] = hidden
    assert re.fullmatch(rf"\.{re.escape(IMAGE_ID)}\.[0-9a-f]{{16}}\.partial", name), name
    assert os.listdir(store.datadir) == [IMAGE_ID]
    assert os.path.getsize(final) == 140_000


def test_concurrent_uploads_of_one_image_use_distinct_partial_files(store: FileStore) -> None:
    names = []

    def inner() -> Iterator[bytes]:
        names.append(_hidden(store))
        yield b"inner"

    def outer() -> Iterator[bytes]:
        yield b"outer"
        store.add(IMAGE_ID, inner())

    stored = store.add(IMAGE_ID, outer())
    [seen] = names
    assert len(seen) == 2
    # The upload that finished last wins.
    assert _read(store, stored.location) == b"outer"


def test_open_reader_keeps_reading_the_replaced_data(store: FileStore) -> None:
    old = store.add(IMAGE_ID, [b"old data"])
    with store.get(old.location) as reader:
        store.add(IMAGE_ID, [b"new data"])
        assert reader.read() == b"old data"
    assert _read(store, old.location) == b"new data"


# -- direct writes ----------------------------------------------------------------

O_DIRECT = getattr(os, "O_DIRECT", 0)


def _supports_direct(directory: str) -> bool:
    """Tell whether *directory*'s file system accepts O_DIRECT files."""
    path = os.path.join(directory, "probe")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | O_DIRECT, 0o600)
    except OSError as ex:
        if ex.errno != errno.EINVAL:
            raise
        return False
    os.close(fd)
    os.unlink(path)
    return True


def _partial_flags(store: FileStore) -> int:
    """Return the open flags of the upload file this process is writing."""
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(store.datadir + "/.") and target.endswith(".partial"):
            return fcntl.fcntl(int(fd), fcntl.F_GETFL)
    raise AssertionError("no upload file is open")


def _watched(store: FileStore, data: bytes, flags: list[int], *, seed: int = 0) -> Iterator[bytes]:
    """Yield *data* in uneven chunks, noting the upload file's flags after each."""
    rng = random.Random(seed)
    offset = 0
    while offset < len(data):
        step = rng.randint(1, 300_000)
        yield data[offset : offset + step]
        offset += step
        flags.append(_partial_flags(store))


@pytest.mark.parametrize(
    "size",
    [1, 4095, 4096, 4097, MIB - 1, MIB, MIB + 1, 3 * MIB + 4096 + 3],
)
def test_direct_upload_skips_the_page_cache_and_keeps_every_byte(
    conf: cfg.ConfigOpts, size: int
) -> None:
    store = FileStore(conf)
    direct = _supports_direct(store.datadir)
    data = random.Random(size).randbytes(size)
    flags: list[int] = []
    stored = store.add(IMAGE_ID, _watched(store, data, flags, seed=size))
    assert stored.size == size
    assert os.path.getsize(store.datadir + "/" + IMAGE_ID) == size
    assert _read(store, stored.location) == data
    # Direct while the data streams in, unless the file system refuses it.
    assert [bool(f & O_DIRECT) for f in flags[:-1]] == [direct] * (len(flags) - 1)


def test_direct_io_off_writes_through_the_page_cache(conf: cfg.ConfigOpts) -> None:
    conf.set_override("direct_io", False, group="image_file_store")
    store = FileStore(conf)
    flags: list[int] = []
    data = random.Random(1).randbytes(2 * MIB)
    stored = store.add(IMAGE_ID, _watched(store, data, flags))
    assert _read(store, stored.location) == data
    assert flags and not any(f & O_DIRECT for f in flags)


def test_file_system_refusing_o_direct_gets_buffered_writes(
    conf: cfg.ConfigOpts, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_open = os.open

    def open_(path: str, flags: int, mode: int = 0o777) -> int:
        if flags & O_DIRECT:
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
        return real_open(path, flags, mode)

    store = FileStore(conf)
    monkeypatch.setattr(os, "open", open_)
    flags: list[int] = []
    data = random.Random(2).randbytes(2 * MIB + 5)
    stored = store.add(IMAGE_ID, _watched(store, data, flags))
    monkeypatch.undo()
    assert _read(store, stored.location) == data
    assert flags and not any(f & O_DIRECT for f in flags)


def test_other_open_errors_are_not_retried(
    conf: cfg.ConfigOpts, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []

    def open_(path: str, flags: int, mode: int = 0o777) -> int:
        calls.append(flags)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    store = FileStore(conf)
    monkeypatch.setattr(os, "open", open_)
    with pytest.raises(exception.StorageFull):
        store.add(IMAGE_ID, [b"data"])
    monkeypatch.undo()
    assert len(calls) == 1
    assert os.listdir(store.datadir) == []


def _write_refusing_direct(real_write: Callable[[int, bytes], int]) -> Callable[[int, bytes], int]:
    def write(fd: int, data: bytes) -> int:
        if fcntl.fcntl(fd, fcntl.F_GETFL) & O_DIRECT:
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
        return real_write(fd, data)

    return write


def _short_first_write(real_write: Callable[[int, bytes], int]) -> Callable[[int, bytes], int]:
    calls = []

    def write(fd: int, data: bytes) -> int:
        calls.append(len(data))
        if len(calls) == 1:
            return real_write(fd, memoryview(data)[: len(data) // 3])
        # An unaligned offset: the store must have left O_DIRECT by now.
        assert not fcntl.fcntl(fd, fcntl.F_GETFL) & O_DIRECT
        return real_write(fd, data)

    return write


@pytest.mark.parametrize("fault", [_write_refusing_direct, _short_first_write])
def test_direct_write_trouble_falls_back_to_buffered_writes(
    conf: cfg.ConfigOpts,
    monkeypatch: pytest.MonkeyPatch,
    fault: Callable[[Callable[[int, bytes], int]], Callable[[int, bytes], int]],
) -> None:
    store = FileStore(conf)
    monkeypatch.setattr(os, "write", fault(os.write))
    data = random.Random(3).randbytes(3 * MIB + 77)
    stored = store.add(IMAGE_ID, _watched(store, data, []))
    monkeypatch.undo()
    assert stored.size == len(data)
    assert _read(store, stored.location) == data
    assert _hidden(store) == set()


def _recording_writes(
    real_write: Callable[[int, bytes], int], sources: list[object]
) -> Callable[[int, bytes], int]:
    """Wrap os.write: note the object whose memory each write sends."""

    def write(fd: int, data: bytes) -> int:
        sources.append(memoryview(data).obj)
        return real_write(fd, data)

    return write


def test_aligned_chunks_are_written_from_their_own_memory(
    conf: cfg.ConfigOpts, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FileStore(conf)
    if not _supports_direct(store.datadir):
        pytest.skip("the file system refuses O_DIRECT")
    data = random.Random(4).randbytes(3 * 256 * 1024 + 100)
    memory = mmap.mmap(-1, len(data))  # page-aligned, as the upload's buffers
    memory[:] = data
    view = memoryview(memory)
    pieces = [view[i : i + 256 * 1024] for i in range(0, len(data), 256 * 1024)]
    sources: list[object] = []
    monkeypatch.setattr(os, "write", _recording_writes(os.write, sources))
    stored = store.add(IMAGE_ID, pieces)
    monkeypatch.undo()
    assert _read(store, stored.location) == data
    # The three whole pieces went from the caller's memory, the 100-byte
    # tail through the store's own buffer.
    assert sources[:3] == [memory] * 3
    assert all(source is not memory for source in sources[3:])


def test_chunks_in_memory_the_kernel_refuses_are_copied(
    conf: cfg.ConfigOpts, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FileStore(conf)
    direct = _supports_direct(store.datadir)
    data = random.Random(5).randbytes(4 * 256 * 1024)
    pieces = [data[i : i + 256 * 1024] for i in range(0, len(data), 256 * 1024)]
    real_write = os.write
    sources: list[object] = []
    flags: list[int] = []

    def write(fd: int, buffer: bytes) -> int:
        # As a kernel that wants aligned memory: bytes objects never are.
        source = memoryview(buffer).obj
        sources.append(source)
        flags.append(fcntl.fcntl(fd, fcntl.F_GETFL))
        if isinstance(source, bytes) and fcntl.fcntl(fd, fcntl.F_GETFL) & O_DIRECT:
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
        return real_write(fd, buffer)

    monkeypatch.setattr(os, "write", write)
    stored = store.add(IMAGE_ID, pieces)
    monkeypatch.undo()
    assert _read(store, stored.location) == data
    if direct:
        # One refused try, then every piece copied and written direct.
        assert isinstance(sources[0], bytes)
        assert not any(isinstance(source, bytes) for source in sources[1:])
        assert all(f & O_DIRECT for f in flags)


# -- fsync ------------------------------------------------------------------------


def test_fsync_flushes_the_file_then_the_directory(
    conf: cfg.ConfigOpts, fsync_calls: list[str]
) -> None:
    store = FileStore(conf, fsync=_counting_fsync(fsync_calls))
    store.add(IMAGE_ID, [b"x" * 1000, b"y"])
    assert fsync_calls == ["file", "directory"]


def test_fsync_off_flushes_nothing(conf: cfg.ConfigOpts, fsync_calls: list[str]) -> None:
    conf.set_override("fsync", False, group="image_file_store")
    store = FileStore(conf, fsync=_counting_fsync(fsync_calls))
    stored = store.add(IMAGE_ID, [b"data"])
    assert fsync_calls == []
    assert _read(store, stored.location) == b"data"


def test_failed_upload_flushes_nothing(conf: cfg.ConfigOpts, fsync_calls: list[str]) -> None:
    store = FileStore(conf, fsync=_counting_fsync(fsync_calls))
    with pytest.raises(ChunkSourceError):
        store.add(IMAGE_ID, _raising(b"data", ChunkSourceError()))
    assert fsync_calls == []


# -- errors -----------------------------------------------------------------------


def _raising(data: bytes, error: BaseException) -> Iterator[bytes]:
    yield data
    raise error


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT], ids=["ENOSPC", "EDQUOT"])
def test_full_disk_while_writing_is_storage_full(
    store: FileStore, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    old = store.add(IMAGE_ID, [b"earlier data"])
    real_write = os.write
    writes = []

    def write(fd: int, data: bytes) -> int:
        writes.append(len(data))
        if len(writes) > 1:
            raise OSError(code, os.strerror(code))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", write)
    with pytest.raises(exception.StorageFull) as info:
        # Whole blocks, so buffered and direct writes both write them one by one.
        store.add(IMAGE_ID, [b"a" * MIB, b"b" * MIB, b"third"])
    monkeypatch.undo()
    assert writes == [MIB, MIB]
    assert info.value.kwargs["store"] == "file"
    assert isinstance(info.value.__cause__, OSError)
    assert info.value.__cause__.errno == code
    assert _hidden(store) == set()
    assert _read(store, old.location) == b"earlier data"


def test_full_disk_on_fsync_is_storage_full(conf: cfg.ConfigOpts) -> None:
    store = FileStore(conf, fsync=_failing_fsync(errno.ENOSPC))
    with pytest.raises(exception.StorageFull):
        store.add(IMAGE_ID, [b"data"])
    assert os.listdir(store.datadir) == []


def test_other_write_errors_are_driver_errors(
    store: FileStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def write(fd: int, data: bytes) -> int:
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(os, "write", write)
    with pytest.raises(exception.DriverError) as info:
        store.add(IMAGE_ID, [b"data"])
    monkeypatch.undo()
    assert info.value.kwargs["driver"] == "FileStore"
    assert "Input/output error" in str(info.value)
    assert os.listdir(store.datadir) == []


def test_failing_rename_is_a_driver_error_and_cleans_up(
    store: FileStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def replace(src: str, dst: str) -> None:
        raise OSError(errno.EXDEV, os.strerror(errno.EXDEV))

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(exception.DriverError):
        store.add(IMAGE_ID, [b"data"])
    monkeypatch.undo()
    assert os.listdir(store.datadir) == []


def test_failing_directory_fsync_leaves_no_file(conf: cfg.ConfigOpts) -> None:
    def fsync(fd: int) -> None:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(errno.EIO, os.strerror(errno.EIO))

    store = FileStore(conf, fsync=fsync)
    with pytest.raises(exception.DriverError):
        store.add(IMAGE_ID, [b"data"])
    assert os.listdir(store.datadir) == []


def test_oserror_from_the_iterator_is_not_translated(store: FileStore) -> None:
    # A client's socket failing is the caller's error, even if it looks like ours.
    error = OSError(errno.ENOSPC, "raised by the chunk source")
    with pytest.raises(OSError) as info:
        store.add(IMAGE_ID, _raising(b"data", error))
    assert info.value is error
    assert os.listdir(store.datadir) == []


def test_keyboard_interrupt_still_cleans_up(store: FileStore) -> None:
    with pytest.raises(KeyboardInterrupt):
        store.add(IMAGE_ID, _raising(b"data", KeyboardInterrupt()))
    assert os.listdir(store.datadir) == []


@pytest.mark.parametrize(
    "image_id",
    ["", ".hidden", "..", "../escape", "a/b", "/abs", "a\0b", "a\nb", "x" * 201, "é", 42],
    ids=repr,
)
def test_unsafe_image_ids_are_refused(store: FileStore, image_id: str) -> None:
    consumed = []

    def chunks() -> Iterator[bytes]:
        consumed.append(True)
        yield b"data"

    with pytest.raises(exception.ValidationError) as info:
        store.add(image_id, chunks())
    assert info.value.kwargs["field"] == "image_id"
    assert consumed == []
    assert os.listdir(store.datadir) == []


def test_longest_safe_image_id_is_accepted(store: FileStore) -> None:
    stored = store.add("x" * 200, [b"data"])
    assert _read(store, stored.location) == b"data"


# -- locations ---------------------------------------------------------------------


def test_missing_file_is_not_found(store: FileStore) -> None:
    location = "file://" + os.path.join(store.datadir, IMAGE_ID)
    with pytest.raises(exception.NotFound) as info:
        store.get(location)
    assert info.value.kwargs == {"kind": "image data", "id": location}


def _outside_locations(store: FileStore, secret: str) -> list[str]:
    datadir = store.datadir
    return [
        "file://" + secret,
        f"file://{datadir}/../{os.path.basename(secret)}",
        f"file://{datadir}/./{IMAGE_ID}",
        f"file://{datadir}//{IMAGE_ID}",
        f"file://{datadir}/sub/../{IMAGE_ID}",
        f"file://{datadir}/",
        f"file://{datadir}",
        f"file:{datadir}/{IMAGE_ID}",
        f"FILE://{datadir}/{IMAGE_ID}",
        f"file://localhost{datadir}/{IMAGE_ID}",
        f"http://example.org{datadir}/{IMAGE_ID}",
        f"{datadir}/{IMAGE_ID}",
        f"file://{datadir}/{IMAGE_ID}\0",
        "file://images/" + IMAGE_ID,
    ]


def test_locations_outside_the_datadir_are_not_read(store: FileStore, tmp_path) -> None:
    secret = tmp_path / "state" / "secret"
    secret.write_bytes(b"not an image")
    store.add(IMAGE_ID, [b"image data"])
    for location in _outside_locations(store, str(secret)):
        with pytest.raises(exception.NotFound):
            store.get(location)


def test_locations_outside_the_datadir_are_not_deleted(store: FileStore, tmp_path) -> None:
    secret = tmp_path / "state" / "secret"
    secret.write_bytes(b"not an image")
    stored = store.add(IMAGE_ID, [b"image data"])
    for location in _outside_locations(store, str(secret)):
        with pytest.raises(exception.DriverError):
            store.delete(location)
    assert secret.read_bytes() == b"not an image"
    assert _read(store, stored.location) == b"image data"


def test_partial_files_cannot_be_read_or_deleted(store: FileStore) -> None:
    seen = []

    def chunks() -> Iterator[bytes]:
        yield b"data"
        [name] = _hidden(store)
        location = "file://" + os.path.join(store.datadir, name)
        with pytest.raises(exception.NotFound):
            store.get(location)
        with pytest.raises(exception.DriverError):
            store.delete(location)
        seen.append(name)

    store.add(IMAGE_ID, chunks())
    assert len(seen) == 1


def test_symlink_in_the_datadir_is_not_followed(store: FileStore, tmp_path) -> None:
    secret = tmp_path / "secret"
    secret.write_bytes(b"not an image")
    os.symlink(secret, os.path.join(store.datadir, IMAGE_ID))
    with pytest.raises(exception.DriverError):
        store.get("file://" + os.path.join(store.datadir, IMAGE_ID))


@pytest.mark.parametrize("make", [os.mkdir, os.mkfifo], ids=["directory", "fifo"])
def test_non_files_in_the_datadir_are_driver_errors(
    store: FileStore, make: Callable[[str], None]
) -> None:
    make(os.path.join(store.datadir, IMAGE_ID))
    with pytest.raises(exception.DriverError):
        store.get("file://" + os.path.join(store.datadir, IMAGE_ID))


def test_negative_ranges_are_refused(store: FileStore) -> None:
    location = store.add(IMAGE_ID, [b"data"]).location
    with pytest.raises(exception.ValidationError):
        store.get(location, offset=-1)
    with pytest.raises(exception.ValidationError):
        store.get(location, length=-1)


# -- readers --------------------------------------------------------------------------


def test_reader_past_the_end_is_positioned_at_the_end(store: FileStore) -> None:
    location = store.add(IMAGE_ID, [b"0123456789"]).location
    with store.get(location, offset=50) as reader:
        # sendfile would then send nothing rather than fail.
        assert os.lseek(reader.fileno(), 0, os.SEEK_CUR) == 10
        assert reader.read() == b""


def test_reader_closes_its_file(store: FileStore) -> None:
    location = store.add(IMAGE_ID, [b"data"]).location
    reader = store.get(location)
    fd = reader.fileno()
    reader.close()
    assert reader.closed
    with pytest.raises(OSError):
        os.fstat(fd)
    with pytest.raises(ValueError):
        reader.read()
    reader.close()  # twice is fine


def test_reader_stops_at_a_file_truncated_behind_it(store: FileStore) -> None:
    location = store.add(IMAGE_ID, [b"0123456789"]).location
    with store.get(location, offset=2) as reader:
        os.truncate(os.path.join(store.datadir, IMAGE_ID), 5)
        assert reader.read() == b"234"


# -- prefetching ahead of a reader -------------------------------------------------------


def _prefetch_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "image-prefetch"]


@pytest.fixture
def small_steps(monkeypatch: pytest.MonkeyPatch) -> int:
    """Prefetch in 4 KiB steps, so that small files get a prefetch thread."""
    monkeypatch.setattr(file_store, "_PREFETCH_STEP", 4096)
    return 4096


@pytest.fixture
def prefetching(conf: cfg.ConfigOpts, small_steps: int) -> FileStore:
    conf.set_override("read_ahead", 64 * 1024, group="image_file_store")
    return FileStore(conf)


@pytest.mark.parametrize("size", [1, 4095, 4096, 65536, MIB])
@pytest.mark.parametrize(("offset", "length"), [(0, None), (3, None), (9000, 100_000), (0, 5)])
def test_prefetching_reader_returns_exactly_the_range(
    prefetching: FileStore, size: int, offset: int, length: int | None
) -> None:
    data = random.Random(size).randbytes(300_000)
    location = prefetching.add(IMAGE_ID, [data]).location
    end = len(data) if length is None else offset + length
    got = []
    with prefetching.get(location, offset=offset, length=length) as reader:
        while chunk := reader.read(size):
            got.append(chunk)
    assert b"".join(got) == data[offset:end]
    assert wait_until(lambda: not _prefetch_threads(), 10)


def test_prefetch_thread_runs_only_for_long_ranges_and_stops_on_close(
    prefetching: FileStore, small_steps: int
) -> None:
    # Longer than the read-ahead window, so that the thread waits for the
    # reader instead of finishing (and vanishing) before it is counted.
    location = prefetching.add(IMAGE_ID, [bytes(100 * small_steps)]).location
    with prefetching.get(location, length=2 * small_steps) as reader:
        reader.read(1)
        assert not _prefetch_threads()  # two steps or less: nothing to win
    reader = prefetching.get(location)
    reader.read(1)
    assert len(_prefetch_threads()) == 1
    reader.close()
    assert not _prefetch_threads()


def test_read_ahead_zero_starts_no_thread(conf: cfg.ConfigOpts, small_steps: int) -> None:
    conf.set_override("read_ahead", 0, group="image_file_store")
    store = FileStore(conf)
    location = store.add(IMAGE_ID, [bytes(100 * small_steps)]).location
    with store.get(location) as reader:
        reader.read(small_steps)
        assert not _prefetch_threads()


def test_reader_reads_on_when_prefetching_cannot_start(
    prefetching: FileStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = random.Random(7).randbytes(200_000)
    location = prefetching.add(IMAGE_ID, [data]).location
    real_open = os.open

    def no_proc(path: str, *args: int, **kwargs: int) -> int:
        if str(path).startswith("/proc/self/fd/"):
            raise FileNotFoundError(errno.ENOENT, "no /proc here", path)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", no_proc)
    with prefetching.get(location) as reader:
        assert reader.read(1000) + reader.read() == data
        assert not _prefetch_threads()


def test_prefetch_stays_within_its_window_of_the_reader(
    prefetching: FileStore, small_steps: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    window = 64 * 1024  # the fixture's read_ahead
    location = prefetching.add(IMAGE_ID, [bytes(100 * small_steps)]).location
    pulled: list[tuple[int, int]] = []
    real_sendfile = os.sendfile

    def recording(out_fd: int, in_fd: int, offset: int | None, count: int) -> int:
        pulled.append((offset or 0, count))
        return real_sendfile(out_fd, in_fd, offset, count)

    monkeypatch.setattr(os, "sendfile", recording)

    def furthest() -> int:
        return max((offset + count for offset, count in pulled), default=0)

    with prefetching.get(location, offset=1000) as reader:
        reader.read(10)  # at 1010
        assert wait_until(lambda: furthest() == 1010 + window, 10)
        time.sleep(0.05)
        assert furthest() == 1010 + window  # and no further while the reader waits
        assert all(count <= small_steps for _, count in pulled)
        reader.read(3 * small_steps)
        position = 1010 + 3 * small_steps
        assert wait_until(lambda: furthest() == position + window, 10)
    assert not _prefetch_threads()
    starts = [offset for offset, _ in pulled]
    assert starts == sorted(starts) and starts[0] == 1000


def test_idle_prefetch_thread_ends_by_itself(
    prefetching: FileStore, small_steps: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(file_store, "_PREFETCH_IDLE", 0.05)
    location = prefetching.add(IMAGE_ID, [bytes(100 * small_steps)]).location
    with prefetching.get(location) as reader:
        reader.read(1)
        # Nothing more is read: the thread waits for the reader, then gives up.
        assert wait_until(lambda: not _prefetch_threads(), 5)
        assert len(reader.read()) == 100 * small_steps - 1


def _cached(fd: int, offset: int) -> bool:
    """Whether the page at *offset* of *fd* is in the page cache (``mincore``, no read)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [
        ctypes.c_void_p,
        ctypes.c_size_t,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_long,
    ]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
    page = mmap.PAGESIZE
    start = offset - offset % page
    address = libc.mmap(None, page, mmap.PROT_READ, mmap.MAP_SHARED, fd, start)
    if address in (None, ctypes.c_void_p(-1).value):
        raise OSError(ctypes.get_errno(), "mmap failed")
    try:
        vector = (ctypes.c_ubyte * 1)()
        if libc.mincore(address, page, vector) != 0:
            raise OSError(ctypes.get_errno(), "mincore failed")
        return bool(vector[0] & 1)
    finally:
        libc.munmap(address, page)


@pytest.mark.parametrize("read_ahead", [0, 16 * MIB])
def test_prefetch_brings_the_data_ahead_into_the_page_cache(
    conf: cfg.ConfigOpts, read_ahead: int
) -> None:
    conf.set_override("read_ahead", read_ahead, group="image_file_store")
    store = FileStore(conf)
    location = store.add(IMAGE_ID, [os.urandom(MIB) for _ in range(32)]).location
    with store.get(location) as reader:
        fd = reader.fileno()
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        if _cached(fd, 12 * MIB):
            pytest.skip("this file system keeps file data in memory (tmpfs?)")
        # The reader's own file description reads no more than asked for, so
        # whatever else is in the cache came from the prefetch thread.
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
        reader.read(4096)
        if read_ahead:
            assert wait_until(lambda: _cached(fd, 12 * MIB), 10)
        else:
            time.sleep(0.1)
            assert not _cached(fd, 12 * MIB)


# -- space and clean-up ----------------------------------------------------------------


def test_capacity_is_the_datadir_file_system(store: FileStore) -> None:
    fs = os.statvfs(store.datadir)
    capacity = store.capacity()
    assert capacity.total == fs.f_blocks * fs.f_frsize
    assert capacity.free is not None
    assert abs(capacity.free - fs.f_bavail * fs.f_frsize) < 64 * 1024 * 1024


def test_purge_partial_removes_old_partial_files_only(conf: cfg.ConfigOpts) -> None:
    clock = FakeTime(start=1_000_000.0)
    store = FileStore(conf, now=clock)
    files = {
        "old": f".{IMAGE_ID}.0123456789abcdef.partial",
        "young": f".{IMAGE_ID}.fedcba9876543210.partial",
        "image": IMAGE_ID,
        "other hidden": ".keep",
        "not partial": f".{IMAGE_ID}.tmp",
    }
    for name in files.values():
        path = os.path.join(store.datadir, name)
        with open(path, "wb") as f:
            f.write(b"data")
        os.utime(path, (1_000_000.0 - 7200, 1_000_000.0 - 7200))
    os.utime(os.path.join(store.datadir, files["young"]), (1_000_000.0, 1_000_000.0))
    os.mkdir(os.path.join(store.datadir, ".a-directory.partial"))
    os.utime(os.path.join(store.datadir, ".a-directory.partial"), (0, 0))

    # Only the old upload file: not the young one, the image, nor other names.
    assert store.purge_partial(older_than=3600) == 1
    assert set(os.listdir(store.datadir)) == set(files.values()) - {files["old"]} | {
        ".a-directory.partial"
    }
    clock.advance(3601)
    assert store.purge_partial(older_than=3600) == 1
    assert store.purge_partial(older_than=3600) == 0
    assert set(os.listdir(store.datadir)) == {
        files["image"],
        files["other hidden"],
        files["not partial"],
        ".a-directory.partial",
    }
