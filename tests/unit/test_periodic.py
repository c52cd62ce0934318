"""The periodic-task runner: start-up runs, interval runs, deadlines and stopping."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from nimbus.periodic import PeriodicRunner, PeriodicTask
from nimbus.testing.waiting import wait_until

TIMEOUT = 10.0


class FakeClock:
    """Monotonic seconds that move only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class RecordingEvent(threading.Event):
    """An event that records the timeout of every wait of the scheduling thread."""

    def __init__(self) -> None:
        super().__init__()
        self.waits: list[float | None] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(timeout)
        return super().wait(timeout)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def event() -> RecordingEvent:
    return RecordingEvent()


@pytest.fixture
def make_runner(clock: FakeClock, event: RecordingEvent) -> Iterator[Callable[..., PeriodicRunner]]:
    runners: list[PeriodicRunner] = []

    def make(*tasks: PeriodicTask, jitter: float = 0.0, fraction: float = 0.0) -> PeriodicRunner:
        runner = PeriodicRunner(
            tasks, clock=clock, event=event, jitter=jitter, random_fraction=lambda: fraction
        )
        runners.append(runner)
        return runner

    yield make
    for runner in runners:
        assert runner.stop(timeout=TIMEOUT)


def step(clock: FakeClock, event: RecordingEvent, seconds: float) -> None:
    """Move the clock, wake the thread, and wait until it has looked and sleeps again."""
    seen = len(event.waits)
    clock.advance(seconds)
    event.set()
    assert wait_until(lambda: len(event.waits) > seen, TIMEOUT)


def counter() -> tuple[list[str], Callable[[str], Callable[[], int]]]:
    calls: list[str] = []

    def task(name: str) -> Callable[[], int]:
        def run() -> int:
            calls.append(name)
            return 0

        return run

    return calls, task


# -- start-up ------------------------------------------------------------------


def test_startup_runs_at_start_tasks_once_in_order(
    make_runner: Callable[..., PeriodicRunner],
) -> None:
    calls, task = counter()
    runner = make_runner(
        PeriodicTask("b", task("b"), interval=60, deadline=5),
        PeriodicTask("a", task("a"), interval=0, deadline=5),
        PeriodicTask("later", task("later"), interval=60, deadline=5, at_start=False),
        PeriodicTask("c", task("c"), interval=60, deadline=5),
    )
    runner.run_startup()
    assert calls == ["b", "a", "c"]


def test_a_failing_startup_task_is_logged_and_the_others_run(
    make_runner: Callable[..., PeriodicRunner], caplog: pytest.LogCaptureFixture
) -> None:
    calls, task = counter()

    def broken() -> None:
        raise RuntimeError("the database went away")

    runner = make_runner(
        PeriodicTask("first", task("first"), interval=0, deadline=5),
        PeriodicTask("broken", broken, interval=0, deadline=5),
        PeriodicTask("last", task("last"), interval=0, deadline=5),
    )
    with caplog.at_level(logging.ERROR, logger="nimbus.periodic"):
        runner.run_startup()
    assert calls == ["first", "last"]
    failures = [r for r in caplog.records if "broken" in r.getMessage()]
    assert len(failures) == 1
    assert failures[0].exc_info is not None
    assert "the database went away" in str(failures[0].exc_info[1])


def test_a_startup_task_past_its_deadline_does_not_hold_up_the_next(
    make_runner: Callable[..., PeriodicRunner], caplog: pytest.LogCaptureFixture
) -> None:
    calls, task = counter()
    release = threading.Event()
    runner = make_runner(
        PeriodicTask("stuck", lambda: release.wait(TIMEOUT), interval=0, deadline=0.05),
        PeriodicTask("next", task("next"), interval=0, deadline=5),
    )
    started = time.monotonic()
    try:
        with caplog.at_level(logging.ERROR, logger="nimbus.periodic"):
            runner.run_startup()
        assert time.monotonic() - started < TIMEOUT / 2
        assert calls == ["next"]
        assert any(
            "stuck" in r.getMessage() and "deadline" in r.getMessage() for r in caplog.records
        )
    finally:
        release.set()


def test_the_result_of_a_run_is_logged_when_true(
    make_runner: Callable[..., PeriodicRunner], caplog: pytest.LogCaptureFixture
) -> None:
    runner = make_runner(
        PeriodicTask("found", lambda: 3, interval=0, deadline=5),
        PeriodicTask("nothing", lambda: 0, interval=0, deadline=5),
    )
    with caplog.at_level(logging.INFO, logger="nimbus.periodic"):
        runner.run_startup()
    messages = [r.getMessage() for r in caplog.records]
    assert messages == ["Periodic task found: 3"]


# -- interval runs ---------------------------------------------------------------


def test_interval_tasks_run_when_due_and_the_thread_sleeps_until_then(
    make_runner: Callable[..., PeriodicRunner], clock: FakeClock, event: RecordingEvent
) -> None:
    calls, task = counter()
    runner = make_runner(
        PeriodicTask("every10", task("every10"), interval=10, deadline=5),
        PeriodicTask("startup-only", task("startup-only"), interval=0, deadline=5),
    )
    runner.start()
    assert wait_until(lambda: event.waits, TIMEOUT)
    assert event.waits[0] == pytest.approx(10)  # sleeps: no busy loop
    step(clock, event, 9)
    assert calls == []
    assert event.waits[-1] == pytest.approx(1)
    step(clock, event, 1)
    assert wait_until(lambda: calls == ["every10"], TIMEOUT)
    step(clock, event, 10)
    assert wait_until(lambda: calls == ["every10"] * 2, TIMEOUT)
    # A suspended process does not make up the runs it missed.
    step(clock, event, 55)
    assert wait_until(lambda: len(calls) == 3, TIMEOUT)
    step(clock, event, 4)
    assert calls == ["every10"] * 3
    step(clock, event, 6)
    assert wait_until(lambda: len(calls) == 4, TIMEOUT)


def test_the_first_interval_run_is_jittered(
    make_runner: Callable[..., PeriodicRunner], clock: FakeClock, event: RecordingEvent
) -> None:
    calls, task = counter()
    runner = make_runner(
        PeriodicTask("t", task("t"), interval=100, deadline=5), jitter=0.2, fraction=0.5
    )
    runner.start()
    assert wait_until(lambda: event.waits, TIMEOUT)
    assert event.waits[0] == pytest.approx(110)
    step(clock, event, 109)
    assert calls == []
    step(clock, event, 1)
    assert wait_until(lambda: calls == ["t"], TIMEOUT)
    # Later runs keep the plain interval.
    assert wait_until(lambda: event.waits[-1] == pytest.approx(100), TIMEOUT)


def test_a_slow_task_never_runs_twice_at_once(
    make_runner: Callable[..., PeriodicRunner], clock: FakeClock, event: RecordingEvent
) -> None:
    release = threading.Event()
    lock = threading.Lock()
    state = {"running": 0, "most": 0, "runs": 0}

    def slow() -> None:
        with lock:
            state["running"] += 1
            state["runs"] += 1
            state["most"] = max(state["most"], state["running"])
        release.wait(TIMEOUT)
        with lock:
            state["running"] -= 1

    runner = make_runner(PeriodicTask("slow", slow, interval=1, deadline=100))
    runner.start()
    assert wait_until(lambda: event.waits, TIMEOUT)
    try:
        step(clock, event, 1)
        assert wait_until(lambda: state["runs"] == 1, TIMEOUT)
        for _ in range(5):
            step(clock, event, 1)
        assert state["runs"] == 1
    finally:
        release.set()
    # Once it returns, the next run (long due) starts.
    assert wait_until(lambda: state["runs"] >= 2, TIMEOUT)
    assert state["most"] == 1


def test_a_startup_run_still_going_blocks_the_interval_run(
    make_runner: Callable[..., PeriodicRunner], clock: FakeClock, event: RecordingEvent
) -> None:
    release = threading.Event()
    runs: list[int] = []

    def slow() -> None:
        runs.append(1)
        release.wait(TIMEOUT)

    runner = make_runner(PeriodicTask("slow", slow, interval=1, deadline=0.05))
    runner.run_startup()
    runner.start()
    try:
        for _ in range(3):
            step(clock, event, 1)
        assert runs == [1]
    finally:
        release.set()
    assert wait_until(lambda: len(runs) == 2, TIMEOUT)


def test_a_run_past_its_deadline_is_logged_once(
    make_runner: Callable[..., PeriodicRunner],
    clock: FakeClock,
    event: RecordingEvent,
    caplog: pytest.LogCaptureFixture,
) -> None:
    release = threading.Event()
    started = threading.Event()

    def hung() -> None:
        started.set()
        release.wait(TIMEOUT)

    runner = make_runner(PeriodicTask("hung", hung, interval=5, deadline=30))
    caplog.set_level(logging.ERROR, logger="nimbus.periodic")
    runner.start()
    assert wait_until(lambda: event.waits, TIMEOUT)
    try:
        step(clock, event, 5)
        assert started.wait(TIMEOUT)
        assert wait_until(lambda: event.waits[-1] == pytest.approx(30), TIMEOUT)
        step(clock, event, 29)
        assert not caplog.records
        step(clock, event, 1)
        step(clock, event, 20)
        overdue = [r for r in caplog.records if "hung" in r.getMessage()]
        assert len(overdue) == 1
        assert "deadline of 30.0 s" in overdue[0].getMessage()
    finally:
        release.set()


# -- stopping ----------------------------------------------------------------------


def test_stop_wakes_the_sleeping_thread_at_once() -> None:
    runner = PeriodicRunner([PeriodicTask("hourly", lambda: None, interval=3600, deadline=5)])
    runner.start()
    assert wait_until(lambda: any(t.name == "nimbus-periodic" for t in threading.enumerate()), 5)
    started = time.monotonic()
    assert runner.stop(timeout=TIMEOUT)
    assert time.monotonic() - started < 1.0
    assert not any(t.name == "nimbus-periodic" for t in threading.enumerate())


def test_the_context_manager_starts_and_stops(
    make_runner: Callable[..., PeriodicRunner], event: RecordingEvent
) -> None:
    runner = make_runner(PeriodicTask("t", lambda: None, interval=10, deadline=5))
    with runner:
        assert wait_until(lambda: event.waits, TIMEOUT)
        with pytest.raises(RuntimeError):
            runner.start()
    assert not any(t.name == "nimbus-periodic" for t in threading.enumerate())


def test_stop_waits_for_a_run_in_progress(
    make_runner: Callable[..., PeriodicRunner], clock: FakeClock, event: RecordingEvent
) -> None:
    finished = threading.Event()

    def short() -> None:
        time.sleep(0.2)
        finished.set()

    runner = make_runner(PeriodicTask("short", short, interval=1, deadline=5))
    runner.start()
    assert wait_until(lambda: event.waits, TIMEOUT)
    step(clock, event, 1)
    assert runner.stop(timeout=TIMEOUT)
    assert finished.is_set()


# -- validation -------------------------------------------------------------------


@pytest.mark.parametrize(("interval", "deadline"), [(-1, 5), (10, 0), (10, -1)])
def test_bad_intervals_and_deadlines_are_refused(interval: float, deadline: float) -> None:
    with pytest.raises(ValueError, match="bad"):
        PeriodicTask("bad", lambda: None, interval=interval, deadline=deadline)


def test_task_names_must_be_unique() -> None:
    task = PeriodicTask("same", lambda: None, interval=1, deadline=1)
    with pytest.raises(ValueError, match="unique"):
        PeriodicRunner([task, task])
