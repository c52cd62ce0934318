"""Hypothesis strategies the API fuzz tests share."""

from __future__ import annotations

import string

from hypothesis import strategies as st

__all__ = ["HEADER_TEXT", "JUNK_SEGMENTS", "PRINTABLE"]

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
