"""What the API fuzz tests share: hypothesis strategies and the checks of every answer."""

from __future__ import annotations

import json
import logging
import string
from typing import Any

import pytest
from hypothesis import strategies as st

__all__ = ["HEADER_TEXT", "JUNK_SEGMENTS", "PRINTABLE", "describe", "error_document"]

#: Path segments that often confuse routers, path handling and SQL.
JUNK_SEGMENTS = [
    "",
    "..",
    ".",
    "%2e%2e",
    "..%2f..",
    "../../../etc/passwd",
    "%2F",
    "%00",
    "%ff%fe",
    "%",
    "%zz",
    "*",
    "null",
    "None",
    "0",
    "-1",
    "%20",
    "+",
    ";",
    "'%20OR%20'1'='1",
    "%C3%A9t%C3%A9",
    "%F0%9F%98%80",
    "%E2%80%AE",
    "$(project_id)s",
    "%7Bproject_id%7D",
    "default",
    "admin",
    ".hidden",
    "00000000-0000-0000-0000-000000000000",
]
PRINTABLE = "".join(c for c in string.printable if c not in "\r\n\x0b\x0c")
HEADER_TEXT = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
    max_size=60,
)


def _server_log(caplog: pytest.LogCaptureFixture) -> str:
    formatter = logging.Formatter("%(levelname)s %(name)s: %(message)s")
    lines = []
    for record in caplog.records:
        if record.levelno >= logging.ERROR:
            lines.append(formatter.format(record))
    return "\n".join(lines) or "(nothing logged)"


def describe(method: str, path: str, query: str, headers: dict, body: bytes | None) -> str:
    """Return a request, shortened, for assertion messages."""
    shown = {k: (v[:12] + "..." if len(v) > 40 else v) for k, v in headers.items()}
    text = repr(body[:400]) if body is not None else "(none)"
    return f"{method} {path}{'?' + query if query else ''}\nheaders: {shown}\nbody: {text}"


def error_document(result: Any, method: str, request: str, caplog: pytest.LogCaptureFixture) -> Any:
    """Check what every answer must have; return the parsed body of a 4xx (else None).

    No 5xx (the server's error log goes into the message), a request id,
    and for a 4xx a JSON content type, with no body on HEAD.
    """
    status = result.status_code
    assert status < 500, f"{result.status} for\n{request}\nserver log:\n{_server_log(caplog)}"
    assert result.headers.get("x-openstack-request-id", "").startswith("req-"), request
    if status < 400:
        return None
    assert result.headers.get("content-type", "").startswith("application/json"), request
    if method == "HEAD":
        assert result.content == b"", request
        return None
    return json.loads(result.text)
