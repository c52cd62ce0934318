"""Polling for a condition that another thread or process brings about."""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["wait_until"]


def wait_until(predicate: Callable[[], object], timeout: float, *, interval: float = 0.01) -> bool:
    """Call *predicate* every *interval* seconds until it is true or *timeout* has passed.

    :returns: whether it became true; it is asked once more at the deadline.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
