"""Periodic tasks: the recovery and clean-up work a service does while it runs.

A **task** is a function the service wants called once at start-up, every
*interval* seconds, or both (:class:`PeriodicTask`).  A **run** is one call
of it.  Every run has a *deadline*: Python cannot kill a thread, so a run
that takes longer is not stopped, but it is logged as an error naming the
task, and no second run of that task starts until it returns.

:class:`PeriodicRunner` runs a service's tasks::

    runner = PeriodicRunner(tasks)
    runner.run_startup()       # the at_start tasks, once, in order
    with runner:               # start() ... stop()
        serve()

Each run happens in a worker thread of its own, so one slow task delays
neither the others nor the scheduling thread.  In a deployment of many
processes every process runs its own tasks, so tasks must be safe to run
concurrently (compare-and-swap updates, idempotent deletes); the first
interval run is delayed by a random fraction of the interval (``jitter``)
so that workers started together do not all fire at once.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable

__all__ = ["PeriodicRunner", "PeriodicTask"]

LOG = logging.getLogger(__name__)

#: The shortest wait of the scheduling thread, so that a clock that does
#: not move (or a task due in the past) cannot make it spin.
_MIN_WAIT = 0.01


@dataclasses.dataclass(frozen=True)
class PeriodicTask:
    """One piece of periodic work of a service.

    :param name: names the task in logs (``image.recover_stale_uploads``).
    :param func: does one run; what it returns (a count of things done,
        say) is logged when it is true.
    :param interval: seconds from the start of one run to the start of the
        next; 0 runs the task at start-up only.
    :param deadline: seconds a run may take before it is logged as overdue.
    :param at_start: run it once from :meth:`PeriodicRunner.run_startup`.
    :raises ValueError: a negative interval or a deadline that is not positive.
    """

    name: str
    func: Callable[[], object]
    interval: float
    deadline: float
    at_start: bool = True

    def __post_init__(self) -> None:
        if self.interval < 0:
            raise ValueError(f"periodic task {self.name}: interval must not be negative")
        if self.deadline <= 0:
            raise ValueError(f"periodic task {self.name}: deadline must be positive")


@dataclasses.dataclass
class _Run:
    """A run in progress: its thread, when it started, whether it was reported late."""

    thread: threading.Thread
    started: float
    overdue: bool = False


class PeriodicRunner:
    """Run periodic tasks at start-up and in a daemon thread.

    :param tasks: the tasks, in the order start-up runs them.
    :param clock: monotonic seconds; scheduling and deadlines follow it.
    :param event: wakes the scheduling thread; :meth:`stop` and finished
        runs set it.  A test that moves *clock* sets it to make the thread
        look again at once.
    :param jitter: the first interval run of a task comes after its interval
        plus up to this fraction of it, chosen at random.
    :param random_fraction: returns a number in [0, 1) for the jitter.
    :param name: the name of the scheduling thread (runs are ``<name>:<task>``).
    """

    def __init__(
        self,
        tasks: Iterable[PeriodicTask],
        *,
        clock: Callable[[], float] = time.monotonic,
        event: threading.Event | None = None,
        jitter: float = 0.1,
        random_fraction: Callable[[], float] = random.random,
        name: str = "nimbus-periodic",
    ) -> None:
        self.tasks = list(tasks)
        names = [task.name for task in self.tasks]
        if len(set(names)) != len(names):
            raise ValueError(f"periodic task names must be unique: {names}")
        self._clock = clock
        self._event = event if event is not None else threading.Event()
        self._jitter = jitter
        self._random = random_fraction
        self._name = name
        self._lock = threading.Lock()
        self._runs: dict[str, _Run] = {}
        self._stopping = False
        self._thread: threading.Thread | None = None

    # -- one run ---------------------------------------------------------------

    def _call(self, task: PeriodicTask) -> None:
        """Do one run of *task* in the current thread; log, never raise."""
        try:
            result = task.func()
        except Exception:
            LOG.exception("Periodic task %s failed", task.name)
        else:
            if result:
                LOG.info("Periodic task %s: %s", task.name, result)
        finally:
            with self._lock:
                self._runs.pop(task.name, None)
            self._event.set()

    def _launch(self, task: PeriodicTask) -> _Run | None:
        """Start a run of *task* in a thread; ``None`` if one is still going."""
        with self._lock:
            if task.name in self._runs:
                return None
            thread = threading.Thread(
                target=self._call, args=(task,), name=f"{self._name}:{task.name}", daemon=True
            )
            run = _Run(thread, self._clock())
            self._runs[task.name] = run
        thread.start()
        return run

    @staticmethod
    def _report_overdue(task: PeriodicTask, run: _Run, elapsed: float) -> None:
        """Log, once per run, that *run* passed its deadline."""
        if not run.overdue:
            run.overdue = True
            LOG.error(
                "Periodic task %s has run for %.1f s, past its deadline of %.1f s;"
                " it gets no new run until this one returns",
                task.name,
                elapsed,
                task.deadline,
            )

    # -- start-up ----------------------------------------------------------------

    def run_startup(self) -> None:
        """Run every ``at_start`` task once, in order, each within its deadline.

        A run still going at its deadline is logged and left to finish in
        its thread while the next task starts; the scheduling thread starts
        no new run of it until it returns.  A failing task is logged.
        """
        for task in self.tasks:
            if not task.at_start:
                continue
            run = self._launch(task)
            if run is None:
                LOG.warning("Periodic task %s is still running; not starting it again", task.name)
                continue
            run.thread.join(task.deadline)
            if run.thread.is_alive():
                elapsed = max(self._clock() - run.started, task.deadline)
                self._report_overdue(task, run, elapsed)

    # -- the scheduling thread ----------------------------------------------------

    def start(self) -> None:
        """Start the daemon thread that runs each interval task when due.

        :raises RuntimeError: the runner was started already.
        """
        if self._thread is not None:
            raise RuntimeError("the periodic runner was started already")
        self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        start = self._clock()
        due = {
            task.name: start + task.interval * (1 + self._jitter * self._random())
            for task in self.tasks
            if task.interval > 0
        }
        by_name = {task.name: task for task in self.tasks}
        while True:
            # Cleared before looking, so a wake-up that comes meanwhile is kept.
            self._event.clear()
            if self._stopping:
                return
            now = self._clock()
            wake_at: list[float] = []
            for name, when in due.items():
                task = by_name[name]
                with self._lock:
                    run = self._runs.get(name)
                if run is not None:
                    # Its end sets the event; until then only its deadline matters.
                    if now - run.started >= task.deadline:
                        self._report_overdue(task, run, now - run.started)
                    if not run.overdue:
                        wake_at.append(run.started + task.deadline)
                    continue
                if now >= when:
                    self._launch(task)
                    # Keep the cadence; runs missed (a suspended process) are skipped.
                    when += task.interval
                    due[name] = when if when > now else now + task.interval
                    with self._lock:
                        running = name in self._runs
                    if running:
                        wake_at.append(now + task.deadline)
                    continue
                wake_at.append(when)
            timeout = None if not wake_at else max(min(wake_at) - now, _MIN_WAIT)
            self._event.wait(timeout)

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop the scheduling thread and wait for it and the runs in progress.

        :param timeout: the most seconds to wait, in all.
        :returns: whether the thread and every run ended within *timeout*.
        """
        self._stopping = True
        self._event.set()
        end = time.monotonic() + timeout
        thread = self._thread
        if thread is not None:
            thread.join(max(end - time.monotonic(), 0))
        with self._lock:
            runs = list(self._runs.items())
        for name, run in runs:
            run.thread.join(max(end - time.monotonic(), 0))
            if run.thread.is_alive():
                LOG.warning("Periodic task %s is still running at stop", name)
        alive = thread is not None and thread.is_alive()
        return not alive and not any(run.thread.is_alive() for _, run in runs)

    def __enter__(self) -> PeriodicRunner:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
