"""The ``file`` image store: one file per image in a local directory."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import io
import logging
import mmap
import os
import re
import secrets
import stat
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import ClassVar

from oslo_config import cfg

from nimbus import exception
from nimbus.conf.image import file_store_opts
from nimbus.drivers.image.base import ImageStore
from nimbus.drivers.image.types import Capability, Capacity, ClosingReader, DataReader, StoredData

__all__ = ["FileStore"]

LOG = logging.getLogger(__name__)

_SCHEME = "file://"
_PARTIAL_SUFFIX = ".partial"
# Image ids are UUIDs; this allows a little more, but never a path separator,
# a leading dot (hidden names are uploads in progress) or anything a shell or
# a log line could trip on.  200 leaves room for the upload's hidden name
# within the usual 255-byte file-name limit.
_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,199}", re.ASCII)
_FULL_ERRNOS = frozenset(
    code for code in (errno.ENOSPC, getattr(errno, "EDQUOT", None)) if code is not None
)
# O_NONBLOCK: opening a FIFO someone left in the directory must not hang;
# it changes nothing for regular files.
_READ_FLAGS = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW
_O_DIRECT = getattr(os, "O_DIRECT", 0)
# Direct writes go through one page-aligned buffer of this size; their
# offsets, lengths and memory must be multiples of the device's logical
# block, which 4096 is on every disk in use.
_DIRECT_ALIGN = 4096
_DIRECT_BUFFER = 1024 * 1024
# A direct upload fed chunks smaller than the buffer may go a long while
# without a write; it then sets the file's mtime itself, at most this often
# (seconds), so that purge_partial still sees a live upload's file as new.
_PROGRESS_MARK = 1.0
# The prefetch thread pulls this much into the page cache per call, and
# gives up after this many seconds without the reader moving.
_PREFETCH_STEP = 4 * 1024 * 1024
_PREFETCH_IDLE = 60.0


class _Prefetcher:
    """Pull a byte range of a file into the page cache ahead of its reader, in a thread.

    The thread ``sendfile``s the file to ``/dev/null``: the kernel reads the
    pages from the disk (with its usual large requests) and copies nothing.
    Through a file description of its own, so its read-ahead state is not
    the reader's, it stays at most *window* bytes ahead of the last
    :meth:`advance`.  The disk then works on the thread's requests and the
    reader's at once, and the reader mostly finds its data in memory.  It is
    only a hint: any error ends the thread and nothing else, and so does a
    reader that stops moving for ``_PREFETCH_IDLE`` seconds.
    """

    def __init__(self, source: int, start: int, end: int, window: int) -> None:
        self._source = source
        self._sink = -1
        self._end = end
        self._window = window
        self._position = start
        self._stopped = False
        self._moved = threading.Condition()
        self._thread = threading.Thread(
            target=self._run, args=(start,), name="image-prefetch", daemon=True
        )

    @classmethod
    def start(cls, fd: int, start: int, end: int, window: int) -> _Prefetcher | None:
        """Start prefetching *fd*'s bytes [*start*, *end*); ``None`` if this system cannot."""
        try:
            source = os.open(f"/proc/self/fd/{fd}", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return None
        prefetcher = cls(source, start, end, window)
        try:
            prefetcher._sink = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
            prefetcher._thread.start()
        except (OSError, RuntimeError):
            prefetcher._close_files()
            return None
        return prefetcher

    def advance(self, position: int) -> None:
        """Tell the thread the reader got to *position*."""
        with self._moved:
            self._position = position
            self._moved.notify()

    def close(self) -> None:
        """Stop the thread and wait for it (at most one step of reading)."""
        with self._moved:
            self._stopped = True
            self._moved.notify()
        if self._thread.ident is not None:
            self._thread.join()

    def _close_files(self) -> None:
        for fd in (self._source, self._sink):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)

    def _run(self, done: int) -> None:
        try:
            while done < self._end:
                with self._moved:
                    while not self._stopped and done - self._position >= self._window:
                        if not self._moved.wait(_PREFETCH_IDLE):
                            return
                    if self._stopped:
                        return
                    done = max(done, self._position)
                    count = min(
                        _PREFETCH_STEP, self._end - done, self._position + self._window - done
                    )
                if count <= 0:
                    return
                sent = os.sendfile(self._sink, self._source, done, count)
                if sent <= 0:
                    return  # the file got shorter
                done += sent
        except OSError:
            return
        finally:
            self._close_files()


class _FileReader(ClosingReader):
    """A range of one open file; ``fileno`` is there for ``sendfile``.

    The descriptor's position is always the next byte to return, which is
    where gunicorn's ``sendfile`` starts.  With *read_ahead*, the first
    ``read`` of a range longer than two prefetch steps starts a
    :class:`_Prefetcher` that keeps up to that many bytes ahead of the
    position; ``close`` stops it.
    """

    def __init__(
        self, file: io.FileIO, start: int, remaining: int, driver: str, *, read_ahead: int = 0
    ) -> None:
        self._file = file
        self._position = start
        self._remaining = remaining
        self._driver = driver
        self._read_ahead = read_ahead
        self._prefetcher: _Prefetcher | None = None

    def read(self, size: int = -1, /) -> bytes:
        want = self._remaining if size < 0 else min(size, self._remaining)
        if self._file.closed:
            raise ValueError("read of a closed reader")
        if self._read_ahead and self._remaining > 2 * _PREFETCH_STEP:
            end = self._position + self._remaining
            self._prefetcher = _Prefetcher.start(
                self._file.fileno(), self._position, end, self._read_ahead
            )
            self._read_ahead = 0  # started, or this system cannot: once per reader
        parts = []
        try:
            while want > 0:
                # Unbuffered, so the descriptor's position stays exact.
                data = self._file.read(want)
                if not data:
                    break  # the file is shorter than when it was opened
                parts.append(data)
                want -= len(data)
                self._remaining -= len(data)
                self._position += len(data)
        except OSError as ex:
            raise exception.DriverError(driver=self._driver, reason=f"read failed: {ex}") from ex
        if self._prefetcher is not None:
            self._prefetcher.advance(self._position)
        return b"".join(parts)

    def fileno(self) -> int:
        return self._file.fileno()

    def close(self) -> None:
        prefetcher, self._prefetcher = self._prefetcher, None
        try:
            if prefetcher is not None:
                prefetcher.close()
        finally:
            self._file.close()

    @property
    def closed(self) -> bool:
        return self._file.closed


class FileStore(ImageStore):
    """Image data as files in one local directory.

    Each image is the file ``[image_file_store] datadir/<image id>``, and its
    location is that file's ``file://`` URL.  An upload goes to a hidden
    ``.<image id>.<random>.partial`` file in the same directory, which is
    flushed (with ``[image_file_store] fsync``) and renamed into place when
    complete, so readers see the old data or the new, never a part.  With
    ``[image_file_store] direct_io``, uploads are written with ``O_DIRECT``
    from a page-aligned buffer: no copy into the page cache, which on a
    virtual machine can cost as much CPU as hashing the data.  A reader of a
    long range keeps up to ``[image_file_store] read_ahead`` bytes of the
    file coming into the page cache ahead of it (see :class:`_Prefetcher`).
    :attr:`datadir` is the directory, as an absolute path.

    An upload file's mtime is its last progress: every write sets it, and a
    direct upload whose data waits in the buffer sets it when a chunk
    arrives (at most once a second), so :meth:`purge_partial` never takes
    a file that is still receiving data.

    With ``[image] enabled_stores``, each ``file`` store reads these
    options from its own group ``[image_store_<store id>]`` instead.

    :param now: returns the current time in seconds since the epoch;
        ``purge_partial`` compares file times with it.
    :param fsync: flushes a file descriptor to disk; injected by tests.
    """

    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.SENDFILE, Capability.PURGE_PARTIAL}
    )

    def __init__(
        self,
        conf: cfg.ConfigOpts,
        *,
        store_id: str | None = None,
        options_group: str | None = None,
        now: Callable[[], float] = time.time,
        fsync: Callable[[int], None] = os.fsync,
    ) -> None:
        super().__init__(conf, store_id=store_id or "file", options_group=options_group)
        options = conf[options_group or "image_file_store"]
        self.datadir = os.path.abspath(os.path.expanduser(options.datadir))
        self._sync = options.fsync
        self._direct_io = options.direct_io
        self._read_ahead = options.read_ahead
        self._now = now
        self._fsync = fsync
        try:
            os.makedirs(self.datadir, mode=0o700, exist_ok=True)
        except OSError as ex:
            raise self._error(ex, f"cannot create the directory {self.datadir}") from ex

    @classmethod
    def store_options(cls, store_id: str) -> Sequence[cfg.Opt]:
        return file_store_opts(store_id)

    # -- helpers ------------------------------------------------------------

    def _error(self, ex: OSError, doing: str) -> exception.NimbusException:
        """Return the nimbus error for *ex*, raised while *doing* something."""
        if ex.errno in _FULL_ERRNOS:
            return exception.StorageFull(store="file", reason=f"{doing}: {ex.strerror}")
        return exception.DriverError(driver=self.name, reason=f"{doing}: {ex}")

    @staticmethod
    def _check_image_id(image_id: str) -> None:
        if not isinstance(image_id, str) or not _SAFE_ID.fullmatch(image_id):
            raise exception.ValidationError(
                field="image_id", reason="not a name the file store can use for a file"
            )

    def _path_of(self, location: str) -> str | None:
        """Return the file of *location*, or ``None`` if it is not one of ours.

        A location comes from the database, never from a user; checking it
        anyway keeps a corrupted row from reading or deleting another file.
        """
        if not isinstance(location, str) or not location.startswith(_SCHEME):
            return None
        path = location[len(_SCHEME) :]
        prefix = self.datadir.rstrip("/") + "/"
        # Exactly "<datadir>/<safe name>": no "..", no "//", no subdirectory.
        if not path.startswith(prefix) or not _SAFE_ID.fullmatch(path[len(prefix) :]):
            return None
        return path

    def _open_partial(self, path: str) -> tuple[int, bool]:
        """Create the upload file *path*; return its descriptor and whether it is direct."""
        if self._direct_io and _O_DIRECT:
            try:
                return os.open(path, _CREATE_FLAGS | _O_DIRECT, 0o600), True
            except OSError as ex:
                if ex.errno != errno.EINVAL:
                    raise
                LOG.debug("%s refuses O_DIRECT; writing through the page cache", self.datadir)
        return os.open(path, _CREATE_FLAGS, 0o600), False

    def _leave_direct(self, fd: int) -> bool:
        """Turn ``O_DIRECT`` off on *fd*; return False (it is no longer direct)."""
        try:
            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~_O_DIRECT)
        except OSError as ex:
            raise self._error(ex, "cannot write the image data") from ex
        return False

    def _write(self, fd: int, view: memoryview, direct: bool) -> bool:
        """Write all of *view* to *fd*; return whether *fd* is still direct.

        A direct write the file system refuses (``EINVAL``), or one that
        stops short and so leaves the file offset unaligned, turns
        ``O_DIRECT`` off for the rest of the upload.
        """
        try:
            while view:
                try:
                    written = os.write(fd, view)
                except OSError as ex:
                    if not (direct and ex.errno == errno.EINVAL):
                        raise
                    direct = self._leave_direct(fd)
                    continue
                view = view[written:]
                if view and direct:
                    direct = self._leave_direct(fd)
        except OSError as ex:
            raise self._error(ex, "cannot write the image data") from ex
        return direct

    def _write_all(self, fd: int, chunks: Iterable[bytes | memoryview], *, direct: bool) -> int:
        """Write every chunk to *fd*; return the number of bytes written.

        Errors raised by *chunks* itself pass through untouched; only the
        store's own system calls are translated.
        """
        if direct:
            buffer = mmap.mmap(-1, _DIRECT_BUFFER)  # anonymous, so page-aligned
            try:
                return self._write_direct(fd, chunks, memoryview(buffer))
            finally:
                # A traceback may still hold a slice of it; then it goes with that.
                with contextlib.suppress(BufferError):
                    buffer.close()
        size = 0
        for chunk in chunks:
            view = memoryview(chunk).cast("B")
            size += len(view)
            self._write(fd, view, False)
        return size

    def _write_direct(
        self, fd: int, chunks: Iterable[bytes | memoryview], block: memoryview
    ) -> int:
        """Write *chunks* to the direct *fd* in aligned blocks.

        A chunk that starts at an aligned offset and is a whole number of
        blocks is written from its own memory, when that is page-aligned
        (the upload's buffers are: see :class:`nimbus.image.data`); other
        data is copied into *block* first.  The unaligned tail, if any,
        goes through the page cache.
        """
        direct = True
        # Whether to try writing chunks from their own memory: the kernel
        # refuses (EINVAL, before writing anything) memory that is not
        # aligned, and then chunks are copied for the rest of the upload.
        in_place = True
        size = filled = 0
        progress = self._now()
        for chunk in chunks:
            data = memoryview(chunk).cast("B")
            size += len(data)
            wrote = False
            if in_place and direct and not filled and data and not len(data) % _DIRECT_ALIGN:
                written = self._write_in_place(fd, data)
                if written is None:
                    in_place = False
                else:
                    direct = self._write(fd, data[written:], direct)
                    data = data[len(data) :]
                    wrote = True
            while data:
                count = min(len(data), len(block) - filled)
                block[filled : filled + count] = data[:count]
                filled += count
                data = data[count:]
                if filled == len(block):
                    direct = self._write(fd, block, direct)
                    filled = 0
                    wrote = True
            now = self._now()
            if wrote:
                progress = now
            elif now - progress >= _PROGRESS_MARK:
                self._mark_progress(fd, now)
                progress = now
        aligned = filled - filled % _DIRECT_ALIGN
        if aligned:
            direct = self._write(fd, block[:aligned], direct)
        if aligned < filled:
            if direct:
                self._leave_direct(fd)
            self._write(fd, block[aligned:filled], False)
        return size

    def _write_in_place(self, fd: int, data: memoryview) -> int | None:
        """Write *data* to the direct *fd* once; return the bytes written.

        ``None``: the kernel refused *data*'s memory (not aligned) and
        wrote nothing.
        """
        try:
            return os.write(fd, data)
        except OSError as ex:
            if ex.errno == errno.EINVAL:
                return None
            raise self._error(ex, "cannot write the image data") from ex

    @staticmethod
    def _mark_progress(fd: int, now: float) -> None:
        """Set *fd*'s mtime to *now*: data arrived that is not written yet."""
        try:
            os.utime(fd, (now, now))
        except OSError as ex:
            LOG.debug("Could not set the mtime of an upload file: %s", ex)

    def _flush(self, fd: int) -> None:
        try:
            self._fsync(fd)
        except OSError as ex:
            raise self._error(ex, "cannot flush the image data") from ex

    def _sync_directory(self) -> None:
        fd = os.open(self.datadir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            self._fsync(fd)
        finally:
            os.close(fd)

    def _seek(self, fd: int, path: str, offset: int, length: int | None) -> tuple[int, int]:
        """Move *fd* to *offset* (at most the end); return it and the range's length."""
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise exception.DriverError(driver=self.name, reason=f"{path} is not a file")
            start = min(offset, info.st_size)
            os.lseek(fd, start, os.SEEK_SET)
        except OSError as ex:
            raise self._error(ex, f"cannot read {path}") from ex
        remaining = info.st_size - start
        return start, remaining if length is None else min(remaining, length)

    @staticmethod
    def _remove(path: str) -> None:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as ex:
            LOG.warning("Could not remove %s: %s", path, ex)

    # -- the interface --------------------------------------------------------

    def add(self, image_id: str, chunks: Iterable[bytes | memoryview]) -> StoredData:
        self._check_image_id(image_id)
        final = os.path.join(self.datadir, image_id)
        partial = os.path.join(self.datadir, f".{image_id}.{secrets.token_hex(8)}{_PARTIAL_SUFFIX}")
        try:
            fd, direct = self._open_partial(partial)
        except OSError as ex:
            raise self._error(ex, "cannot create an upload file") from ex
        try:
            try:
                size = self._write_all(fd, chunks, direct=direct)
                if self._sync:
                    self._flush(fd)
            except BaseException:
                # The exception that stopped the upload is the one to report.
                with contextlib.suppress(OSError):
                    os.close(fd)
                raise
            try:
                os.close(fd)
            except OSError as ex:
                # Network file systems may report lost writes as late as this.
                raise self._error(ex, "cannot close the upload file") from ex
            try:
                os.replace(partial, final)
            except OSError as ex:
                raise self._error(ex, "cannot move the upload into place") from ex
        except BaseException:
            self._remove(partial)
            raise
        if self._sync:
            try:
                self._sync_directory()
            except OSError as ex:
                # The rename may not survive a crash: report the upload as
                # failed, and leave no file that nothing refers to.
                self._remove(final)
                raise self._error(ex, "cannot flush the data directory") from ex
        return StoredData(location=_SCHEME + final, size=size)

    def get(self, location: str, *, offset: int = 0, length: int | None = None) -> DataReader:
        """Return a reader with ``fileno()``, positioned at *offset*.

        :raises NotFound: *location* is not a file of this store's directory,
            or that file does not exist.
        """
        if offset < 0:
            raise exception.ValidationError(field="offset", reason="must not be negative")
        if length is not None and length < 0:
            raise exception.ValidationError(field="length", reason="must not be negative")
        path = self._path_of(location)
        if path is None:
            raise exception.NotFound(kind="image data", id=location)
        try:
            fd = os.open(path, _READ_FLAGS)
        except FileNotFoundError:
            raise exception.NotFound(kind="image data", id=location) from None
        except OSError as ex:
            raise self._error(ex, f"cannot open {path}") from ex
        try:
            start, remaining = self._seek(fd, path, offset, length)
        except BaseException:
            os.close(fd)
            raise
        return _FileReader(
            io.FileIO(fd, "r"), start, remaining, self.name, read_ahead=self._read_ahead
        )

    def delete(self, location: str) -> None:
        """Remove the file at *location*.

        :raises DriverError: *location* is not a file of this store's
            directory; nothing is removed.
        """
        path = self._path_of(location)
        if path is None:
            raise exception.DriverError(
                driver=self.name, reason=f"{location!r} is not a location of this store"
            )
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as ex:
            raise self._error(ex, f"cannot remove {path}") from ex

    def capacity(self) -> Capacity:
        """Return the size and free space of the datadir's file system."""
        try:
            fs = os.statvfs(self.datadir)
        except OSError as ex:
            raise self._error(ex, f"cannot inspect {self.datadir}") from ex
        return Capacity(total=fs.f_blocks * fs.f_frsize, free=fs.f_bavail * fs.f_frsize)

    def purge_partial(self, *, older_than: float) -> int:
        """Remove upload files not written to for *older_than* seconds.

        A file's age is that of its last write, so a slow upload that is
        still receiving data is never removed.
        """
        cutoff = self._now() - older_than
        removed = 0
        try:
            with os.scandir(self.datadir) as entries:
                for entry in entries:
                    if not (entry.name.startswith(".") and entry.name.endswith(_PARTIAL_SUFFIX)):
                        continue
                    try:
                        info = entry.stat(follow_symlinks=False)
                    except FileNotFoundError:
                        continue  # finished or removed meanwhile
                    if not stat.S_ISREG(info.st_mode) or info.st_mtime >= cutoff:
                        continue
                    try:
                        os.unlink(entry.path)
                    except FileNotFoundError:
                        continue
                    LOG.info("Removed the abandoned upload file %s", entry.path)
                    removed += 1
        except OSError as ex:
            raise self._error(ex, f"cannot purge uploads in {self.datadir}") from ex
        return removed

    def ex_partial_writes(self) -> set[str]:
        """Return the names of the upload files in :attr:`datadir` (for tests).

        Every hidden name there is an upload in progress or one left behind:
        image ids never start with a dot.
        """
        try:
            names = os.listdir(self.datadir)
        except OSError as ex:
            raise self._error(ex, f"cannot list {self.datadir}") from ex
        return {name for name in names if name.startswith(".")}
