"""Caller-controlled values cannot forge log lines."""

from __future__ import annotations

import pytest

from nimbus.common.logsafe import printable


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("/v2/images/x\nFORGED line", "/v2/images/x\\nFORGED line"),
        ("a\r\nb", "a\\r\\nb"),
        ("\x1b[31mred", "\\x1b[31mred"),
        ("nul\x00del\x7f", "nul\\x00del\\x7f"),
        ("c1\x85", "c1\\x85"),
        ("sep\u2028par\u2029", "sep\\u2028par\\u2029"),
        ("plain /path ünïcode", "plain /path ünïcode"),
        (42, "42"),
    ],
)
def test_controls_are_escaped_and_the_rest_kept(value: object, shown: str) -> None:
    assert printable(value) == shown
    assert "\n" not in printable(value) and "\r" not in printable(value)
