"""Values that cross the image store boundary."""

from __future__ import annotations

import abc
import dataclasses
import enum
from types import TracebackType
from typing import Protocol, Self

__all__ = ["Capability", "Capacity", "ClosingReader", "DataReader", "StoredData"]


class Capability(enum.Enum):
    """Optional operations an image store may offer."""

    #: ``get`` returns a reader with a ``fileno()`` positioned at the
    #: range's start, so the web server may send it with ``sendfile``.
    SENDFILE = "sendfile"
    #: ``purge_partial`` removes data left behind by interrupted writes.
    PURGE_PARTIAL = "purge_partial"


@dataclasses.dataclass(frozen=True)
class StoredData:
    """Where a store put an image's bytes, and how many it wrote.

    :param location: an opaque, store-specific URI; the image service keeps
        it and hands it back to ``get`` and ``delete``, and never shows it
        to users.
    :param size: the number of bytes stored.
    """

    location: str
    size: int


@dataclasses.dataclass(frozen=True)
class Capacity:
    """A store's space, in bytes; ``None`` where the store cannot tell."""

    total: int | None
    free: int | None


class DataReader(Protocol):
    """A readable stream of stored bytes, as ``get`` returns it."""

    def read(self, size: int = -1, /) -> bytes:
        """Return up to *size* bytes (all that is left when negative); b'' at the end."""

    def close(self) -> None:
        """Release the stream's resources; further reads are undefined."""


class ClosingReader(abc.ABC):
    """Base of a store's readers: a context manager that closes the reader on exit."""

    @abc.abstractmethod
    def read(self, size: int = -1, /) -> bytes:
        """Return up to *size* bytes (all that is left when negative); b'' at the end."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the stream's resources; further reads are undefined."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
