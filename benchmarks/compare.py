"""Run the token and image benchmarks for two commits side by side.

Run it as ``/work/venv/bin/python benchmarks/compare.py --base REV``.  Each
commit is exported with ``git archive`` and installed, not editable, into a
venv of its own (cached under ``~/.cache/nimbus-bench/<sha>``), and this
checkout's ``token_bench.py`` and ``image_bench.py`` are run with each venv's
Python in turns, base/head/head/base..., so that a machine that gets busier
or quieter during the run moves both sides alike.  The table at the end gives
each figure's median per commit and the head's change against the base; a
figure more than ``--tolerance`` worse is marked ``SLOWER`` and makes the exit
status 1.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "nimbus-bench"


@dataclass(frozen=True)
class Figure:
    """One number a benchmark prints, and which way is better."""

    name: str
    value: float
    higher_is_better: bool = True


def token_figures(document: dict[str, Any]) -> Iterator[Figure]:
    """The request rates of ``token_bench.py``'s JSON, one per test."""
    for row in document["results"]:
        cost = "" if row["bcrypt_cost"] is None else f" bcrypt {row['bcrypt_cost']}"
        label = f"token {row['backend']}/{row['worker_class']} {row['test']}{cost}"
        yield Figure(f"{label} req/s", row["rate"])
        yield Figure(f"{label} p99 ms", row["p99_ms"], higher_is_better=False)


def image_figures(document: dict[str, Any]) -> Iterator[Figure]:
    """The transfer rates (and list latency, when measured) of ``image_bench.py``."""
    transfers = document.get("transfers", {})
    for name in ("upload", "download", "download_hashed"):
        if name in transfers:
            yield Figure(f"image {name} MB/s", transfers[name]["mb_s"])
    if "list" in document:
        yield Figure("image list p50 ms", document["list"]["p50_ms"], higher_is_better=False)


@dataclass(frozen=True)
class Bench:
    script: str
    figures: Callable[[dict[str, Any]], Iterator[Figure]]


# Each figure: its values for the base, for the head, and whether higher is better.
Table = dict[str, tuple[list[float], list[float], bool]]

BENCHES = {
    "token": Bench("token_bench.py", token_figures),
    "image": Bench("image_bench.py", image_figures),
}


def resolve(rev: str) -> str:
    """The full commit id of ``rev`` in this repository."""
    return subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--verify", f"{rev}^{{commit}}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def install(sha: str) -> Path:
    """A venv with commit ``sha`` installed from its own tree; return its Python.

    The install is editable: commits before the wheel was fixed (issue 9)
    build wheels without ``nimbus.api``.
    """
    home = CACHE / sha
    python = home / "venv" / "bin" / "python"
    if (home / "installed").exists():
        return python
    source = home / "src"
    source.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", sha], check=True, capture_output=True
    ).stdout
    with tempfile.TemporaryFile() as f:
        f.write(archive)
        f.seek(0)
        with tarfile.open(fileobj=f) as tar:
            tar.extractall(source, filter="data")
    subprocess.run([sys.executable, "-m", "venv", str(home / "venv")], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "-e", f"{source}[mysql]"],
        check=True,
        stderr=subprocess.DEVNULL,
    )
    (home / "installed").touch()
    return python


def run_once(python: Path, bench: Bench, args: Sequence[str], label: str) -> list[Figure]:
    """Run one benchmark with one commit's Python; return its figures."""
    with tempfile.TemporaryDirectory(prefix="nimbus-compare-") as tmp:
        out = Path(tmp) / "result.json"
        log = Path(tmp) / "output.txt"
        print(f"... {label}: {bench.script} {' '.join(args)}", flush=True)
        with log.open("w") as f:
            status = subprocess.run(
                [str(python), str(HERE / bench.script), *args, "--json", str(out)],
                cwd=tmp,
                stdout=f,
                stderr=subprocess.STDOUT,
                check=False,
            ).returncode
        if not out.exists():
            sys.exit(f"{label}: {bench.script} failed (exit {status}):\n{log.read_text()[-3000:]}")
        return list(bench.figures(json.loads(out.read_text())))


def turns(rounds: int) -> Iterator[int]:
    """0 for the base, 1 for the head, in the order base, head, head, base, ..."""
    for r in range(rounds):
        yield from ((0, 1) if r % 2 == 0 else (1, 0))


def compare(
    revs: tuple[str, str], pythons: tuple[Path, Path], benches: dict[str, list[str]], rounds: int
) -> Table:
    """Every figure's values for the base and the head, and whether higher is better."""
    table: Table = {}
    for name, args in benches.items():
        for side in turns(rounds):
            label = f"{'base' if side == 0 else 'head'} {revs[side][:10]}"
            for figure in run_once(pythons[side], BENCHES[name], args, label):
                entry = table.setdefault(figure.name, ([], [], figure.higher_is_better))
                entry[side].append(figure.value)
    return table


def report(revs: tuple[str, str], table: Table, tolerance: float) -> int:
    """Print the side-by-side table; return 1 when a figure got worse than the tolerance."""
    print(f"\nbase {revs[0][:10]} vs head {revs[1][:10]}: medians, every run in brackets")
    print(f"{'figure':44} {'base':>10} {'head':>10} {'change':>8}")
    status = 0
    for name, (base, head, higher_is_better) in table.items():
        if not base or not head:
            continue
        b, h = statistics.median(base), statistics.median(head)
        change = (h - b) / b if b else 0.0
        worse = -change if higher_is_better else change
        verdict = "SLOWER" if worse > tolerance else ""
        status |= bool(verdict)
        print(f"{name:44} {b:10.1f} {h:10.1f} {change:+8.1%} {verdict}")
        runs = (", ".join(f"{v:.1f}" for v in side) for side in (base, head))
        print(f"{'':44} [{next(runs)}] [{next(runs)}]")
    return status


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="HEAD~1", help="the commit to compare against (HEAD~1)")
    parser.add_argument("--head", default="HEAD", help="the commit measured (HEAD)")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each per commit")
    parser.add_argument("--only", choices=sorted(BENCHES), help="run one benchmark only")
    parser.add_argument("--tolerance", type=float, default=0.10, help="worst change allowed (0.10)")
    parser.add_argument(
        "--token-args",
        default="--duration 5 --bcrypt-costs 12,4",
        help="arguments for token_bench.py (%(default)s)",
    )
    parser.add_argument(
        "--image-args",
        default="--skip-list --size 512MiB",
        help="arguments for image_bench.py (%(default)s)",
    )
    args = parser.parse_args(argv)
    revs = (resolve(args.base), resolve(args.head))
    pythons = (install(revs[0]), install(revs[1]))
    benches = {"token": args.token_args.split(), "image": args.image_args.split()}
    if args.only:
        benches = {args.only: benches[args.only]}
    return report(revs, compare(revs, pythons, benches, args.rounds), args.tolerance)


if __name__ == "__main__":
    sys.exit(main())
