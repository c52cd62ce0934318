"""The Fernet key repository: a directory of key files named ``0, 1, 2, ...``.

Vocabulary of this module:

* the **primary** key is the highest-numbered file; it encrypts new tokens;
* the **staged** key is file ``0``: it never encrypts, but it already
  decrypts, so it can be copied to every API node before a rotation makes it
  primary anywhere;
* the other keys are **secondary**: they only decrypt tokens issued before
  the last rotations.

API processes only read the repository.  ``nimbus fernet rotate`` changes it
from another process, so a reader checks the directory (its mtime and the
identity of each key file) at most once per ``refresh_interval`` and reloads
the keys only when something changed: validating a token never touches the
key files.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import dataclasses
import fcntl
import hashlib
import logging
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from typing import Protocol

from cryptography.fernet import Fernet, MultiFernet
from oslo_config import cfg

from nimbus import exception
from nimbus.conf import state_path

__all__ = [
    "KeyRepository",
    "KeyRepositoryError",
    "KeySource",
    "RotationResult",
    "repository_path",
]

LOG = logging.getLogger(__name__)

#: The staged key's number.
STAGED = 0
_KEY_NAME = re.compile(r"0|[1-9][0-9]*")
_FIX_IT = "run 'nimbus fernet setup' to create the keys"
# A consistent view of the files needs the listing to be the same before and
# after the keys are read; a rotation is three renames, so a few tries do.
_READ_ATTEMPTS = 5

# (name, inode, mtime, size) of every key file, plus the directory's mtime.
_Signature = tuple[int, tuple[tuple[str, int, int, int], ...]]


class KeyRepositoryError(exception.NimbusException):
    """The key repository is missing, empty, unreadable or holds a bad key."""

    msg_fmt = "Fernet key repository %(path)s: %(reason)s"


class KeySource(Protocol):
    """What :class:`~nimbus.identity.token.formatter.TokenFormatter` needs from keys."""

    def crypter(self) -> MultiFernet:
        """Return the keys, the one to encrypt with first.

        :raises KeyRepositoryError: the keys cannot be loaded.
        """
        ...  # pragma: no cover


@dataclasses.dataclass(frozen=True)
class RotationResult:
    """What a rotation did, by key number (never key material)."""

    #: The new primary key: the old staged key under its new number.
    primary: int
    #: Keys deleted because more than ``max_active_keys`` remained.
    removed: tuple[int, ...]
    #: Every key left in the repository, highest first (0 is the new staged key).
    active: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class _Loaded:
    signature: _Signature
    numbers: tuple[int, ...]
    crypter: MultiFernet
    #: sha256 of the primary key: names it without revealing it.
    primary_hash: str


def repository_path(conf: cfg.ConfigOpts) -> str:
    """Return the configured key repository, ``<state_path>/fernet-keys`` by default.

    :param conf: the nimbus config (``[fernet_tokens]`` group).
    :returns: the directory's path.
    """
    configured = conf.fernet_tokens.key_repository
    if configured:
        return os.path.expanduser(configured)
    return state_path(conf, "fernet-keys")


class KeyRepository:
    """A directory of Fernet keys, cached in memory and reloaded when it changes.

    :param path: the repository directory.
    :param max_active_keys: keys kept by :meth:`rotate`, the staged and the
        primary key included; at least 2.
    :param clock: monotonic seconds, injected by tests.
    :param refresh_interval: least number of seconds between two checks of the
        directory for a rotation made by another process.
    :param generate_key: returns a new urlsafe-base64 key, injected by tests.
    :param setup_hint: what to run when there are no keys, for error messages.
    """

    def __init__(
        self,
        path: str,
        max_active_keys: int = 3,
        *,
        clock: Callable[[], float] = time.monotonic,
        refresh_interval: float = 1.0,
        generate_key: Callable[[], bytes] = Fernet.generate_key,
        setup_hint: str = _FIX_IT,
    ) -> None:
        self.path = os.path.abspath(path)
        self._fix_it = setup_hint
        self.max_active_keys = max_active_keys
        self._clock = clock
        self._refresh_interval = refresh_interval
        self._generate_key = generate_key
        self._lock = threading.Lock()
        self._loaded: _Loaded | None = None
        # None: look at the directory on the next call.
        self._checked_at: float | None = None

    @classmethod
    def from_conf(
        cls, conf: cfg.ConfigOpts, *, clock: Callable[[], float] = time.monotonic
    ) -> KeyRepository:
        """Build the repository named by ``[fernet_tokens]``.

        :param conf: the nimbus config.
        :param clock: monotonic seconds, injected by tests.
        :returns: a repository that has not read its keys yet.
        """
        return cls(repository_path(conf), conf.fernet_tokens.max_active_keys, clock=clock)

    # -- writing -----------------------------------------------------------

    def initialize(self) -> list[int]:
        """Create the directory and keys 0 (staged) and 1 (primary) if it has no keys.

        Running it again on a repository that holds keys changes nothing, so
        it is safe in deployment scripts.

        :returns: the numbers of the keys created, empty when there were keys.
        :raises KeyRepositoryError: the directory cannot be created or written.
        """
        try:
            if not os.path.isdir(self.path):
                os.makedirs(self.path, mode=0o700, exist_ok=True)
                # makedirs' mode is filtered by the umask; make it exact.
                os.chmod(self.path, 0o700)
            with self._exclusive():
                if self._key_files():
                    return []
                # The primary first: a reader looking in between must not
                # find the staged key alone and encrypt with it.
                self._write_key(1)
                self._write_key(STAGED)
                self._fsync_dir()
        except OSError as ex:
            raise KeyRepositoryError(path=self.path, reason=_os_reason(ex)) from ex
        LOG.info("Created Fernet key repository %s with keys 0 and 1", self.path)
        self._checked_at = None
        return [STAGED, 1]

    def rotate(self) -> RotationResult:
        """Promote the staged key to primary and stage a new key.

        The staged key ``0`` gets the number after the highest one, so it
        becomes the primary; a new key is written as ``0``; then the lowest
        secondary keys are deleted until ``max_active_keys`` keys remain.
        At every moment the directory holds a usable set of complete keys, so
        a process reading it concurrently never sees a half-written key or
        loses the primary.

        :returns: the key numbers involved.
        :raises KeyRepositoryError: the repository has no keys, cannot be
            written, or ``max_active_keys`` is below 2.
        """
        if self.max_active_keys < 2:
            raise KeyRepositoryError(
                path=self.path,
                reason=f"max_active_keys must be at least 2 (the staged and the primary key), "
                f"not {self.max_active_keys}",
            )
        if not os.path.isdir(self.path):
            raise KeyRepositoryError(
                path=self.path, reason=f"the directory does not exist; {self._fix_it}"
            )
        try:
            with self._exclusive():
                numbers = sorted(self._key_files())
                if not numbers:
                    raise KeyRepositoryError(path=self.path, reason=f"no keys; {self._fix_it}")
                primary = numbers[-1] + 1
                staged = os.path.join(self.path, str(STAGED))
                if STAGED in numbers:
                    # A second name for the staged key, then the new key
                    # replaces "0" in one rename: "0" never goes missing.
                    os.link(staged, os.path.join(self.path, str(primary)))
                else:
                    # Someone deleted the staged key: there is nothing to
                    # promote, so the primary stays and a new key is staged.
                    primary = numbers[-1]
                self._write_key(STAGED)
                remaining = sorted({*numbers, primary, STAGED}, reverse=True)
                removed: list[int] = []
                while len(remaining) > self.max_active_keys:
                    # The lowest secondary: never the staged key at the end.
                    lowest = remaining.pop(-2)
                    os.unlink(os.path.join(self.path, str(lowest)))
                    removed.append(lowest)
                self._fsync_dir()
        except OSError as ex:
            raise KeyRepositoryError(path=self.path, reason=_os_reason(ex)) from ex
        LOG.info(
            "Rotated Fernet keys in %s: primary key %d, removed %s",
            self.path,
            primary,
            removed or "none",
        )
        self._checked_at = None
        return RotationResult(primary=primary, removed=tuple(removed), active=tuple(remaining))

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        # Two rotations at once would both promote the same staged key; an
        # advisory lock on the directory itself serializes the writers.
        fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _write_key(self, number: int) -> None:
        # mkstemp opens the file with mode 0600, what umask 0o177 gives,
        # without changing the umask: that is process-wide, shared by threads.
        fd, tmp = tempfile.mkstemp(prefix=".new-key-", dir=self.path)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(self._generate_key())
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, os.path.join(self.path, str(number)))
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def _fsync_dir(self) -> None:
        fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    # -- reading -----------------------------------------------------------

    def load(self) -> dict[int, bytes]:
        """Read every key file from disk.

        :returns: key material by key number, highest number first.
        :raises KeyRepositoryError: the directory is missing or unreadable,
            holds no key, or a file is not a valid Fernet key.
        """
        return self._read_consistent()[1]

    def crypter(self) -> MultiFernet:
        """Return the cached keys, reloading them if the repository changed.

        The directory is looked at no more than once per
        ``refresh_interval``; between two looks this costs one clock call.

        :returns: a MultiFernet whose keys are the primary, then the others
            from the highest number down to the staged key.
        :raises KeyRepositoryError: the first load failed (later failures
            keep the last good keys and are logged).
        """
        loaded = self._loaded
        if loaded is not None and self._fresh(self._clock()):
            return loaded.crypter
        with self._lock:
            loaded = self._loaded
            now = self._clock()
            if loaded is not None and self._fresh(now):
                return loaded.crypter
            try:
                if loaded is None or self._signature() != loaded.signature:
                    loaded = self._reload()
            except KeyRepositoryError as ex:
                if loaded is None:
                    raise
                LOG.warning("Keeping the Fernet keys loaded before: %s", ex)
            self._checked_at = now
            return loaded.crypter

    def _fresh(self, now: float) -> bool:
        checked_at = self._checked_at
        return checked_at is not None and now - checked_at < self._refresh_interval

    def primary_key_hash(self) -> str:
        """Return the sha256 hex digest of the primary key (the one :meth:`crypter` encrypts with).

        Stored beside what the key encrypted, it tells which data a rotation
        would leave encrypted with an old key.

        :raises KeyRepositoryError: the keys cannot be loaded.
        """
        self.crypter()
        assert self._loaded is not None
        return self._loaded.primary_hash

    def key_numbers(self) -> tuple[int, ...]:
        """Return the numbers of the keys in use, highest first.

        :raises KeyRepositoryError: the keys cannot be loaded.
        """
        self.crypter()
        assert self._loaded is not None
        return self._loaded.numbers

    def _reload(self) -> _Loaded:
        signature, keys = self._read_consistent()
        try:
            crypter = MultiFernet([Fernet(key) for key in keys.values()])
        except (ValueError, binascii.Error) as ex:  # pragma: no cover - checked per file
            raise KeyRepositoryError(path=self.path, reason="a key is not valid") from ex
        numbers = tuple(keys)
        LOG.info("Loaded Fernet keys %s from %s", ", ".join(map(str, numbers)), self.path)
        primary_hash = hashlib.sha256(keys[numbers[0]]).hexdigest()
        self._loaded = _Loaded(
            signature=signature, numbers=numbers, crypter=crypter, primary_hash=primary_hash
        )
        return self._loaded

    def _read_consistent(self) -> tuple[_Signature, dict[int, bytes]]:
        for _attempt in range(_READ_ATTEMPTS):
            before = self._signature()
            keys = self._read_keys()
            after = self._signature()
            if before == after:
                break
        # After a few tries the last read is still a set of complete keys.
        if not keys:
            raise KeyRepositoryError(path=self.path, reason=f"no keys; {self._fix_it}")
        return after, keys

    def _key_files(self) -> dict[int, str]:
        with os.scandir(self.path) as entries:
            return {
                int(entry.name): entry.path
                for entry in entries
                if _KEY_NAME.fullmatch(entry.name) and entry.is_file()
            }

    def _signature(self) -> _Signature:
        try:
            dir_mtime = os.stat(self.path).st_mtime_ns
            files = []
            with os.scandir(self.path) as entries:
                for entry in entries:
                    if not _KEY_NAME.fullmatch(entry.name):
                        continue
                    try:
                        st = entry.stat()
                    except FileNotFoundError:
                        continue
                    files.append((entry.name, st.st_ino, st.st_mtime_ns, st.st_size))
        except FileNotFoundError as ex:
            raise KeyRepositoryError(
                path=self.path, reason=f"the directory does not exist; {self._fix_it}"
            ) from ex
        except OSError as ex:
            raise KeyRepositoryError(path=self.path, reason=_os_reason(ex)) from ex
        return dir_mtime, tuple(sorted(files))

    def _read_keys(self) -> dict[int, bytes]:
        try:
            files = self._key_files()
        except OSError as ex:
            raise KeyRepositoryError(path=self.path, reason=_os_reason(ex)) from ex
        keys: dict[int, bytes] = {}
        for number in sorted(files, reverse=True):
            try:
                with open(files[number], "rb") as f:
                    key = f.read().strip()
            except FileNotFoundError:
                continue  # deleted by a rotation in progress
            except OSError as ex:
                raise KeyRepositoryError(path=self.path, reason=_os_reason(ex)) from ex
            if not _is_fernet_key(key):
                raise KeyRepositoryError(
                    path=self.path, reason=f"key file {number} does not hold a valid Fernet key"
                )
            keys[number] = key
        return keys


def _is_fernet_key(key: bytes) -> bool:
    try:
        return len(base64.urlsafe_b64decode(key)) == 32
    except (ValueError, binascii.Error):
        return False


def _os_reason(ex: OSError) -> str:
    # strerror without the file name: the path is in the message already.
    return ex.strerror or type(ex).__name__
