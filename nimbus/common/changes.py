"""Change stamps shared by the worker processes of one server.

Each API process keeps caches of what is in the database: the revocation
events, validated tokens, the rendered catalog.  A change made through the
process itself updates its caches at once; one made through another process
is seen when the cache is next re-read (``[token]
revocation_refresh_interval``, ``cache_time``, ...).

:class:`Changes` closes that gap between the workers of one gunicorn master
(``nimbus up``): a small block of shared memory holds one *stamp* per kind of
change.  A process that commits a change writes a new stamp for its kind; a
process about to use a cache reads the stamp (a memory read, no system call)
and re-reads the database when the stamp is not the one it last saw.  The
stamp is written after the transaction commits and read before the cache is
refreshed, so whoever sees the new stamp also sees the change.

A stamp is a random 64-bit number, not a counter: writing one needs no lock
that a worker killed half-way could leave held, and two processes writing at
once still leave a stamp neither reader has seen.

The memory is an anonymous shared mapping: processes forked after the
:class:`Changes` was made share it; a process started on its own (a gunicorn
target without ``--preload``, another host) has its own, and relies on the
re-read intervals as before.
"""

from __future__ import annotations

import enum
import mmap
import secrets
import struct

__all__ = ["Change", "Changes"]

_STAMP = struct.Struct("=Q")


class Change(enum.IntEnum):
    """What a stamp stands for; its value is the stamp's slot."""

    #: A revocation event was recorded.
    REVOCATIONS = 0
    #: Cached token validations are out of date (roles, grants, memberships).
    TOKENS = 1
    #: The catalog (services, endpoints, regions) changed.
    CATALOG = 2


class Changes:
    """One stamp per :class:`Change`, shared with the processes forked after it is made."""

    def __init__(self) -> None:
        # An anonymous mapping is MAP_SHARED: a fork sees the same pages.
        self._memory = mmap.mmap(-1, _STAMP.size * len(Change))
        for change in Change:
            self.record(change)

    def record(self, change: Change) -> None:
        """Tell every sharing process that a *change* was committed."""
        _STAMP.pack_into(self._memory, change * _STAMP.size, secrets.randbits(64))

    def stamp(self, change: Change) -> int:
        """Return the stamp of *change*: another one means a change since."""
        value: int = _STAMP.unpack_from(self._memory, change * _STAMP.size)[0]
        return value
