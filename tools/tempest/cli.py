"""``python -m tools.tempest``: run tempest's selections against a cloud."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from tools.tempest import cloud, config, resources, selections
from tools.tempest.counting import Summary, count, no_results
from tools.tempest.selections import Selection
from tools.tempest.subunit_v2 import StreamError, read_results
from tools.tempest.workspace import REQUIREMENT, RunnerError, Workspace, ensure_venv

__all__ = ["main"]


class _UsageError(Exception):
    """The command line asks for something the runner cannot do."""


_ROOT = Path(__file__).resolve().parents[2]
_DESCRIPTION = """\
Run OpenStack's tempest API tests against a Keystone-v3 cloud, a selection
per service, and print one line per service:

    tempest <service>: P passed, F failed, S skipped

counted per selected test (a test whose class set-up failed or skipped takes
that outcome, one with no result failed, a failed class tear-down is one more
failure).  The exit status is 0 when every service has 0 failed and some
passed, 1 otherwise, 2 when the run could not start.  The credentials default
to the OS_* variables of an openrc; --start-cloud runs a nimbus up of its own.
"""


def _pairs(values: Sequence[str], option: str) -> dict[str, str]:
    """Parse ``SERVICE=VALUE`` options into a dict."""
    parsed = {}
    for value in values:
        service, sep, rest = value.partition("=")
        if not sep:
            raise _UsageError(f"{option} takes SERVICE=VALUE, not {value!r}")
        parsed[service] = rest
    return parsed


def _parser() -> argparse.ArgumentParser:
    env = os.environ.get
    parser = argparse.ArgumentParser(
        prog="python -m tools.tempest",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    known = ",".join(s.name for s in selections.SELECTIONS)
    parser.add_argument("services", nargs="?", default="identity", help=f"comma list among {known}")
    cloud_args = parser.add_argument_group("the cloud")
    cloud_args.add_argument(
        "--start-cloud",
        action="store_true",
        help="run `nimbus up` on a temporary state dir and a free port, and stop it after",
    )
    cloud_args.add_argument("--auth-url", default=env("OS_AUTH_URL"), help="($OS_AUTH_URL)")
    cloud_args.add_argument("--username", default=env("OS_USERNAME", "admin"))
    cloud_args.add_argument("--password", default=env("OS_PASSWORD"), help="($OS_PASSWORD)")
    cloud_args.add_argument("--project", default=env("OS_PROJECT_NAME", "admin"))
    cloud_args.add_argument(
        "--domain",
        default=env("OS_USER_DOMAIN_NAME", "Default"),
        help="domain name of the admin user and project",
    )
    cloud_args.add_argument(
        "--region", help="(default: the region of the catalog's public identity endpoint)"
    )
    tests = parser.add_argument_group("the tests")
    tests.add_argument(
        "--features",
        action="append",
        default=[],
        metavar="SERVICE=LIST",
        help="optional features to test, a comma list or `all` (e.g. identity=trust,ec2)",
    )
    tests.add_argument(
        "--regex",
        action="append",
        default=[],
        metavar="SERVICE=REGEX",
        help="replace a service's selection",
    )
    tests.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="SERVICE=REGEX",
        help="exclude more of a service's tests",
    )
    tests.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="a tempest.conf value, written last",
    )
    tests.add_argument("--concurrency", type=int, default=2)
    tests.add_argument("--verbose", action="store_true", help="show tempest's output")
    where = parser.add_argument_group("where things go")
    where.add_argument(
        "--venv",
        type=Path,
        default=_ROOT / ".tox" / "tempest-venv",
        help="tempest's venv, made when missing (default .tox/tempest-venv)",
    )
    where.add_argument(
        "--results",
        type=Path,
        help="results directory (default .tox/tempest-results/<date-time>)",
    )
    return parser


def _overrides(values: Sequence[str]) -> list[tuple[str, str, str]]:
    result = []
    for value in values:
        name, sep, setting = value.partition("=")
        section, dot, key = name.rpartition(".")
        if not sep or not dot or not section or not key:
            raise _UsageError(f"--set takes SECTION.KEY=VALUE, not {value!r}")
        result.append((section, key, setting))
    return result


def _chosen(names: str) -> list[Selection]:
    chosen = []
    for name in (n.strip() for n in names.split(",")):
        if not name:
            continue
        try:
            chosen.append(selections.by_name(name))
        except KeyError:
            known = ",".join(s.name for s in selections.SELECTIONS)
            raise _UsageError(
                f"no selection for the service {name!r}; choose among {known}"
            ) from None
    if not chosen:
        raise _UsageError("no service to test")
    return chosen


def _features(asked: dict[str, str]) -> dict[str, frozenset[str]]:
    features = {}
    for name, listed in asked.items():
        try:
            selection = selections.by_name(name)
        except KeyError:
            raise _UsageError(f"--features: no selection for the service {name!r}") from None
        names = frozenset(n.strip() for n in listed.split(",") if n.strip())
        try:
            features[name] = selection.expand(names)
        except ValueError as ex:
            raise _UsageError(str(ex)) from ex
    return features


def _write_summary(results: Path, service: str, summary: Summary) -> None:
    (results / f"{service}.failing").write_text("".join(t + "\n" for t in summary.failing))
    with (results / f"{service}.json").open("w") as f:
        json.dump(summary.as_json(), f, indent=1)


def _run_service(
    workspace: Workspace,
    selection: Selection,
    regex: str,
    exclude: str,
    args: argparse.Namespace,
) -> tuple[Summary, int]:
    results = workspace.results
    name = selection.name
    selected = workspace.list_tests(regex, exclude)
    (results / f"{name}.selected").write_text("".join(t + "\n" for t in selected))
    (results / f"{name}.regex").write_text(regex + "\n")
    (results / f"{name}.exclude").write_text(exclude + "\n")
    shown = f"  exclude: {exclude}" if exclude else ""
    print(f"[{name}] {len(selected)} tests selected; regex: {regex}{shown}", flush=True)
    log = results / f"{name}.log"
    run = workspace.run(regex, exclude, concurrency=args.concurrency, log=log, echo=args.verbose)
    if run.subunit is None:
        summary = no_results(selected, f"tempest run recorded no results (see {log})")
    else:
        (results / f"{name}.subunit").write_bytes(run.subunit)
        try:
            summary = count(read_results(run.subunit), selected)
        except StreamError as ex:
            summary = Summary(len(selected), 0, {"(subunit stream)": str(ex)}, {}, {})
    _write_summary(results, name, summary)
    print(f"[{name}] finished in {run.seconds}s; failing ids: {results / name}.failing")
    return summary, run.seconds


@dataclass(frozen=True)
class _Plan:
    """What the command line asked for, checked."""

    services: list[Selection]
    features: dict[str, frozenset[str]]
    regexes: dict[str, str]
    excludes: dict[str, str]
    overrides: list[tuple[str, str, str]]

    @classmethod
    def parse(cls, args: argparse.Namespace) -> _Plan:
        return cls(
            _chosen(args.services),
            _features(_pairs(args.features, "--features")),
            _pairs(args.regex, "--regex"),
            _pairs(args.exclude, "--exclude"),
            _overrides(args.set),
        )


def _run(
    args: argparse.Namespace,
    plan: _Plan,
    tempest: Path,
    results: Path,
    auth_url: str,
    password: str,
) -> int:
    chosen, features, regexes, excludes = plan.services, plan.features, plan.regexes, plan.excludes
    admin = config.Admin(args.username, password, args.project, args.domain)
    workspace = Workspace(tempest, results)
    workspace.init()
    try:
        catalog = config.discover(auth_url, admin)
    except OSError as ex:
        raise RunnerError(f"could not get an admin token from {auth_url}: {ex}") from ex
    overrides = list(plan.overrides)
    if any(s.name == "compute" for s in chosen):
        given = {(section, key) for section, key, _ in overrides}
        try:
            refs = resources.compute_refs(auth_url, admin)
        except OSError as ex:
            raise RunnerError(f"could not make the compute tests' image and flavors: {ex}") from ex
        overrides = [("compute", k, v) for k, v in refs.items() if ("compute", k) not in given]
        overrides += list(plan.overrides)
    conf, warnings = config.build(
        auth_url, admin, catalog, chosen, features, region=args.region, overrides=overrides
    )
    for warning in warnings:
        print(f"WARNING: {warning}", file=sys.stderr)
    config.write(workspace.conf, conf)
    region = conf["identity"]["region"]
    print(f"tempest.conf: {workspace.conf} (region {region!r})", flush=True)

    lines, ok, total = [], True, 0
    with (results / "summary.txt").open("w") as out:
        for selection in chosen:
            enabled = features.get(selection.name, frozenset())
            regex = regexes.get(selection.name, selection.regex)
            asked = [excludes[selection.name]] if excludes.get(selection.name) else []
            exclude = "|".join(asked + selection.excluded(enabled))
            summary, seconds = _run_service(workspace, selection, regex, exclude, args)
            total += seconds
            out.write(f"{selection.name} runtime_s={seconds} selected={summary.selected}\n")
            lines.append(summary.line(selection.name))
            ok = ok and summary.ok
        print(f"total runtime_s={total}")
        print(f"results: {results}")
        out.write(f"total runtime_s={total}\n")
        for line in lines:
            print(line)
            out.write(line + "\n")
    return 0 if ok else 1


@contextlib.contextmanager
def _interruptible() -> Iterator[None]:
    """Unwind once on Ctrl-C or SIGTERM, and let the clean-up finish.

    The first signal raises :class:`KeyboardInterrupt`, so that the runs
    and a started cloud are stopped on the way out; later ones (tox sends
    its own SIGINT after the terminal's) are ignored until then.
    """
    stopping = (signal.SIGINT, signal.SIGTERM)

    def interrupt(signum: int, frame: FrameType | None) -> None:
        for number in stopping:
            signal.signal(number, signal.SIG_IGN)
        raise KeyboardInterrupt

    previous = {number: signal.signal(number, interrupt) for number in stopping}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; return its exit status."""
    args = _parser().parse_args(argv)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    results = (args.results or _ROOT / ".tox" / "tempest-results" / stamp).resolve()
    try:
        results.mkdir(parents=True, exist_ok=True)
        plan = _Plan.parse(args)
        if not args.start_cloud and not (args.auth_url and args.password):
            raise _UsageError("give --auth-url and --password (or OS_*), or --start-cloud")
        with _interruptible():
            # tempest first: a cold install takes a minute the cloud need not idle
            tempest = ensure_venv(args.venv.resolve())
            print(f"tempest ({REQUIREMENT}) from {tempest}", flush=True)
            if not args.start_cloud:
                return _run(args, plan, tempest, results, args.auth_url, args.password)
            with cloud.started(results / "nimbus-up.log") as running:
                print(f"nimbus up at {running.auth_url} (log: {running.log})", flush=True)
                return _run(args, plan, tempest, results, running.auth_url, running.password)
    except _UsageError as ex:
        print(f"tempest runner: {ex}", file=sys.stderr)
        return 2
    except RunnerError as ex:
        print(f"tempest runner: {ex}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("tempest runner: interrupted", file=sys.stderr)
        return 130
