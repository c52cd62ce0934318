"""The runner's command line refuses what it cannot do before it starts."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import pytest

from tools.tempest.cli import _interruptible, main


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["network"],
            "no selection for the service 'network'; choose among identity,image,compute",
        ),
        (["identity", "--features", "identity=nosuch"], "unknown identity feature"),
        (["identity", "--features", "trust"], "--features takes SERVICE=VALUE"),
        (["identity", "--set", "novalue"], "--set takes SECTION.KEY=VALUE"),
    ],
)
def test_usage_errors_exit_2(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    common = ["--auth-url", "http://127.0.0.1:1/identity", "--password", "pw"]
    assert main([*args, *common, "--results", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err


def test_credentials_are_needed_without_a_cloud_of_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("OS_AUTH_URL", raising=False)
    monkeypatch.delenv("OS_PASSWORD", raising=False)
    assert main(["identity", "--results", str(tmp_path)]) == 2
    assert "--start-cloud" in capsys.readouterr().err


def test_the_first_stop_signal_unwinds_and_later_ones_let_the_clean_up_finish() -> None:
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers can only be set in the main thread")
    before = signal.getsignal(signal.SIGTERM)
    cleaned = False
    with _interruptible():
        try:
            signal.raise_signal(signal.SIGTERM)
            pytest.fail("SIGTERM did not interrupt")
        except KeyboardInterrupt:
            signal.raise_signal(signal.SIGINT)  # tox's own, after the terminal's
            signal.raise_signal(signal.SIGTERM)
            cleaned = True
    assert cleaned
    assert signal.getsignal(signal.SIGTERM) == before
