"""The image store interface: where image bytes live.

Vocabulary of this layer:

* An **image** is known to a store only by its id; everything else about it
  (name, status, owner, checksums) belongs to the image service.
* A **location** is the opaque string a store returns from :meth:`add`; the
  service keeps it with the image and passes it back to :meth:`get` and
  :meth:`delete`.  Its form is the store's business.
* Data is streamed in both directions: :meth:`add` consumes an iterator of
  chunks and :meth:`get` returns a reader.  No operation may hold a whole
  image in memory.

A cloud may have several stores (``[image] enabled_stores``), each an
instance of a store class with a **store id** (``fast``, ``cheap``) and an
option group of its own; several instances of one class never share data.

The service computes sizes and hashes while streaming and stops the
iterator (by raising from it) when a limit is passed, so a store never has
to know about quotas or checksums.
"""

from __future__ import annotations

import abc
import types
from collections.abc import Iterable, Mapping, Sequence
from typing import ClassVar

from oslo_config import cfg

from nimbus import exception
from nimbus.drivers._capabilities import CapabilityGuarded
from nimbus.drivers.image.types import Capability, Capacity, DataReader, StoredData

__all__ = ["OPTIONAL_OPERATIONS", "ImageStore"]

#: Each optional operation and the capability it needs.  A store without
#: that capability raises ``OperationNotSupported`` from it, even when it
#: inherits an implementation (see :meth:`ImageStore.__init_subclass__`).
OPTIONAL_OPERATIONS: Mapping[str, Capability] = types.MappingProxyType(
    {"purge_partial": Capability.PURGE_PARTIAL}
)


class ImageStore(CapabilityGuarded, abc.ABC):
    """Base class of image stores (``nimbus.image.stores``).

    :param conf: the nimbus config; stores read their own option group.
    :param store_id: the id the operator gave the store in ``[image]
        enabled_stores``; with one store, its entry-point name.
    :param options_group: the option group this instance reads, where the
        class has per-store options (see :meth:`store_options`); ``None``
        for the class's own fixed group (the single-store configuration).

    A store written for the older ``__init__(conf)`` still loads: the
    service then sets :attr:`store_id` itself, and the store reads its fixed
    group, so it may be enabled once only.
    """

    #: Optional operations this store implements.
    capabilities: ClassVar[frozenset[Capability]] = frozenset()
    optional_operations = OPTIONAL_OPERATIONS

    #: The store's id (see the class docstring); set by the constructor.
    store_id: str = ""

    def __init__(
        self,
        conf: cfg.ConfigOpts,
        *,
        store_id: str | None = None,
        options_group: str | None = None,
    ) -> None:
        self.conf = conf
        self.store_id = store_id or type(self).__name__
        self.options_group = options_group

    @classmethod
    def store_options(cls, store_id: str) -> Sequence[cfg.Opt]:
        """Return the options an instance with id *store_id* reads from its own group.

        The service registers them in ``[image_store_<store id>]`` and
        passes that group as ``options_group``.  None by default: such a
        store has no per-store options.
        """
        return ()

    @abc.abstractmethod
    def add(self, image_id: str, chunks: Iterable[bytes | memoryview]) -> StoredData:
        """Store the bytes yielded by *chunks* as *image_id*'s data.

        The data becomes readable only once every chunk is written (and made
        durable, where the store can); until then no reader sees a part of
        it.  Storing data for an image that already has some replaces it,
        possibly at the same location, so callers must not delete the
        previous location after a successful replace.  If *chunks* raises,
        or the store fails, nothing of this write is left behind, earlier
        data stays intact, and the exception propagates unchanged.

        :param image_id: the image's id (a UUID string).
        :param chunks: the data, in pieces of any size (bytes, or
            memoryviews of bytes); iterating it may raise (a client went
            away, a limit was passed).  A piece is only valid until the
            next is asked for (its buffer is then reused): a store that
            keeps data across pieces copies it.
        :returns: the new location and the number of bytes written.
        :raises StorageFull: the store ran out of space.
        :raises DriverError: the store failed.
        """

    @abc.abstractmethod
    def get(self, location: str, *, offset: int = 0, length: int | None = None) -> DataReader:
        """Return a reader of the stored bytes from *offset*.

        :param location: a location returned by :meth:`add`.
        :param offset: the first byte to return (0 or more); past the end,
            the reader returns no bytes.
        :param length: the most bytes to return; all up to the end if ``None``.
        :raises NotFound: nothing is stored at *location*.
        :raises ValidationError: a negative offset or length.
        :raises DriverError: the store failed.
        """

    @abc.abstractmethod
    def delete(self, location: str) -> None:
        """Remove the data at *location*; removing missing data is not an error.

        :raises DriverError: the store failed.
        """

    @abc.abstractmethod
    def capacity(self) -> Capacity:
        """Return the store's total and free space."""

    def purge_partial(self, *, older_than: float) -> int:
        """Remove data of writes that never finished (a crashed server's).

        :param older_than: only writes that made no progress for this many
            seconds, so a slow upload still receiving data is kept.
        :returns: how many partial writes were removed.
        :raises OperationNotSupported: the store has no such clean-up.
        """
        raise exception.OperationNotSupported(driver=self.name, operation="purge_partial")
