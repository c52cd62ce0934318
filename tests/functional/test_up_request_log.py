"""``nimbus up`` leaves the per-request log line out unless asked (``--log-requests``)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from nimbus.testing.server import nimbus_up

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("flag", [False, True])
def test_request_lines_follow_the_option(tmp_path: Path, flag: bool) -> None:
    log_path = tmp_path / "up.log"
    extra = ("--log-requests",) if flag else ()
    with nimbus_up(tmp_path / "state", log_path=log_path, extra_args=extra) as server:
        assert server.get_status("/identity/v3/no-such-thing") == 404
        assert server.get_status("/identity/v3") == 200
        # The response is sent before the line is written: give it a moment.
        deadline = time.monotonic() + 5
        while flag and "GET /identity/v3 status: 200" not in log_path.read_text():
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
    log = log_path.read_text()
    # Start-up INFO lines are there either way: only the request lines differ.
    assert " INFO " in log
    assert ("GET /identity/v3 status: 200" in log) is flag
    assert ("GET /identity/v3/no-such-thing status: 404" in log) is flag
