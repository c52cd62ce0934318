"""Values from callers, made safe to log: no line a caller can forge.

A request path like ``/v2/images/x%0AFORGED ...`` decodes to a newline; logged
as it is, the text after it reads as a log line of its own. Every value a
caller controls goes through :func:`printable` before it reaches a log.
"""

from __future__ import annotations

import re

__all__ = ["printable"]

# C0 and C1 controls, DEL, and the Unicode line and paragraph separators.
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _escape(match: re.Match[str]) -> str:
    return match.group().encode("unicode_escape").decode("ascii")


def printable(value: object) -> str:
    """Return ``str(value)`` with control characters written as escapes (``\\n``, ``\\x1b``)."""
    return _CONTROLS.sub(_escape, str(value))
