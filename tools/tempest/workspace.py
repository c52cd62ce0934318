"""The tempest venv, a tempest workspace, and the runs in it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["REQUIREMENT", "RunnerError", "Workspace", "ensure_venv"]

#: What is installed from the package index.
REQUIREMENT = "tempest>=47,<48"
_MARKER = "nimbus-tempest-requirement"


class RunnerError(RuntimeError):
    """A step before the tests (venv, workspace, cloud) went wrong."""


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def ensure_venv(
    venv: Path, *, python: str = sys.executable, requirement: str = REQUIREMENT
) -> Path:
    """Return the ``tempest`` command of *venv*, installing it first if needed.

    A venv that already installed *requirement* is reused as it is; pip's
    output goes to ``pip-install.log`` in it, the versions it chose to
    ``pip-freeze.txt``.

    :raises RunnerError: the venv could not be made or pip failed.
    """
    tempest = venv / "bin" / "tempest"
    marker = venv / _MARKER
    if tempest.exists() and marker.exists() and marker.read_text().strip() == requirement:
        return tempest
    if not (venv / "bin" / "python").exists():
        venv.parent.mkdir(parents=True, exist_ok=True)
        made = subprocess.run([python, "-m", "venv", str(venv)], check=False)
        if made.returncode:
            raise RunnerError(f"{python} -m venv {venv} failed")
    pip = str(venv / "bin" / "pip")
    log = venv / "pip-install.log"
    with log.open("w") as out:
        for args in (["--upgrade", "pip"], [requirement]):
            done = subprocess.run(
                [pip, "install", "-q", *args], stdout=out, stderr=subprocess.STDOUT, check=False
            )
            if done.returncode:
                raise RunnerError(f"pip install {' '.join(args)} failed:\n{_tail(log)}")
    with (venv / "pip-freeze.txt").open("w") as out:
        subprocess.run([pip, "freeze"], stdout=out, stderr=subprocess.DEVNULL, check=False)
    if not tempest.exists():
        raise RunnerError(f"{requirement} installed no {tempest}")
    marker.write_text(requirement + "\n")
    return tempest


def _stop(process: subprocess.Popen[bytes], grace: float = 10) -> None:
    """End *process* and its workers if it still runs (the runner was stopped).

    It was started in a session of its own, so its process group is the
    run and its stestr workers, and nothing else.
    """
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@dataclass(frozen=True)
class Run:
    """One ``tempest run``: did it record results, and how long it took."""

    subunit: bytes | None
    seconds: int


class Workspace:
    """A tempest workspace under a results directory.

    Its ``etc/tempest.conf``, ``logs/tempest.log`` and ``.stestr``
    repository stay there for a look after the run; nothing is written to
    ``~/.tempest``.
    """

    def __init__(self, tempest: Path, results: Path) -> None:
        self.tempest = tempest
        self.stestr = tempest.parent / "stestr"
        self.results = results
        self.path = results / "workspace"

    @property
    def conf(self) -> Path:
        """Return the path of its tempest.conf."""
        return self.path / "etc" / "tempest.conf"

    def init(self) -> None:
        """Make the workspace unless it exists.

        :raises RunnerError: ``tempest init`` failed.
        """
        if (self.path / ".stestr.conf").exists():
            return
        # An empty --config-dir and a --workspace-path of our own keep
        # tempest init away from ~/.tempest and /etc/tempest.
        empty = self.results / "empty-global-config"
        empty.mkdir(parents=True, exist_ok=True)
        log = self.results / "init.log"
        with log.open("w") as out:
            done = subprocess.run(
                [
                    str(self.tempest),
                    "init",
                    "--workspace-path",
                    str(self.results / "workspace.yaml"),
                    "--config-dir",
                    str(empty),
                    "--name",
                    f"nimbus-{self.results.name}",
                    str(self.path),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                check=False,
            )
        if done.returncode:
            raise RunnerError(f"tempest init failed:\n{_tail(log)}")

    def _filters(self, regex: str, exclude: str) -> list[str]:
        return ["--regex", regex, *(["--exclude-regex", exclude] if exclude else [])]

    def list_tests(self, regex: str, exclude: str) -> list[str]:
        """Return the ids of the tests *regex* selects, less *exclude*."""
        done = subprocess.run(
            [str(self.tempest), "run", "--list-tests", *self._filters(regex, exclude)],
            cwd=self.path,
            capture_output=True,
            text=True,
            check=False,
        )
        return [line for line in done.stdout.splitlines() if line.startswith("tempest.")]

    def _last_run(self) -> str | None:
        runs = [p.name for p in (self.path / ".stestr").glob("*") if p.name.isdigit()]
        return max(runs, key=int) if runs else None

    def run(self, regex: str, exclude: str, *, concurrency: int, log: Path, echo: bool) -> Run:
        """Run the selected tests; return the stream it recorded, if any."""
        before = self._last_run()
        command = [
            str(self.tempest),
            "run",
            "--config-file",
            str(self.conf),
            "--concurrency",
            str(concurrency),
            *self._filters(regex, exclude),
        ]
        started = time.monotonic()
        with log.open("wb") as out:
            process = subprocess.Popen(
                command,
                cwd=self.path,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            try:
                assert process.stdout is not None
                for chunk in process.stdout:
                    out.write(chunk)
                    if echo:
                        sys.stdout.buffer.write(chunk)
                        sys.stdout.flush()
                process.wait()
            finally:
                _stop(process)
        seconds = round(time.monotonic() - started)
        if self._last_run() in (None, before):
            return Run(None, seconds)
        stream = subprocess.run(
            [str(self.stestr), "last", "--subunit"],
            cwd=self.path,
            capture_output=True,
            check=False,
        )
        return Run(stream.stdout, seconds)
