"""Count a service's tempest results per selected test.

tempest's own "Totals" count a class whose ``setUpClass`` failed or skipped
once; here every selected test counts, so passed + failed + skipped is the
number selected, plus one failure per failed class fixture no test took:

- a test with a result has that outcome;
- a test without one takes the outcome of its class's (or module's)
  ``setUpClass`` when that failed or was skipped;
- any other test without a result failed (it did not run);
- a failed ``tearDownClass`` (or a failed set-up none of whose tests was
  selected) is one more failure.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from tools.tempest.subunit_v2 import INTERIM, TestResult

__all__ = ["FAILED", "PASSED", "Summary", "count", "no_results"]

PASSED = frozenset({"success", "xfail"})
FAILED = frozenset({"fail", "uxsuccess"})

_FIXTURE = re.compile(r"^(setUpClass|tearDownClass|setUpModule|tearDownModule) \((.+)\)$")
_REASON_CHARS = 400


@dataclass(frozen=True)
class Summary:
    """The counts of one service and why each test failed or skipped."""

    selected: int
    passed: int
    failing: dict[str, str]
    skipped: dict[str, str]
    fixtures: dict[str, str]

    @property
    def failed(self) -> int:
        """Return the number of failures."""
        return len(self.failing)

    @property
    def ok(self) -> bool:
        """Return whether nothing failed and something passed."""
        return self.failed == 0 and self.passed > 0

    def line(self, service: str) -> str:
        """Return the summary line of *service*."""
        return (
            f"tempest {service}: {self.passed} passed, {self.failed} failed, "
            f"{len(self.skipped)} skipped"
        )

    def as_json(self) -> dict[str, Any]:
        """Return the counts, the failing ids and the reasons, for a JSON file."""
        return {
            "selected": self.selected,
            "passed": self.passed,
            "failed": self.failed,
            "skipped": len(self.skipped),
            "failing_ids": list(self.failing),
            "failing_reasons": self.failing,
            "skipped_ids": self.skipped,
            "class_fixtures": self.fixtures,
        }


def _reason(result: TestResult) -> str | None:
    for name in ("reason", "traceback"):
        text = result.text(name)
        if text is not None:
            return text[-_REASON_CHARS:]
    return None


def _test_class(test_id: str) -> str:
    """Return *test_id* without its ``[id-...,smoke]`` attributes."""
    return test_id.split("[", 1)[0]


def count(results: Iterable[TestResult], selected: Sequence[str]) -> Summary:
    """Return the counts of *results* over the *selected* test ids."""
    status: dict[str, str] = {}
    reasons: dict[str, str] = {}
    for result in results:
        if result.status is None or result.status in INTERIM:
            continue
        status[result.test_id] = result.status
        reason = _reason(result)
        if reason is not None:
            reasons[result.test_id] = reason
    fixtures = {}
    for test_id in status:
        match = _FIXTURE.match(test_id)
        if match:
            fixtures[test_id] = (match.group(1), match.group(2))
    set_ups = [
        (fixture, owner + ".")
        for fixture, (kind, owner) in fixtures.items()
        if kind.startswith("setUp") and status[fixture] in ("fail", "skip")
    ]

    outcome: dict[str, str] = {}
    why: dict[str, str] = {}
    cause: dict[str, str] = {}
    for test_id in selected:
        if test_id in status:
            outcome[test_id] = status[test_id]
            continue
        for fixture, prefix in set_ups:
            if _test_class(test_id).startswith(prefix):
                outcome[test_id] = status[fixture]
                why[test_id] = f"{fixture}: {reasons.get(fixture, '')}"
                cause[test_id] = fixture
                break
        else:
            outcome[test_id] = "fail"
            why[test_id] = "no result recorded (not run)"
    for test_id, st in status.items():
        # a result for a test the listing did not select: counted all the same
        if test_id not in outcome and test_id not in fixtures:
            outcome[test_id] = st

    blamed = {cause[t] for t, st in outcome.items() if st == "fail" and t in cause}
    failed = sorted(t for t, st in outcome.items() if st in FAILED)
    failed += sorted(f for f in fixtures if status[f] in FAILED and f not in blamed)
    skipped = sorted(t for t, st in outcome.items() if st == "skip")
    return Summary(
        selected=len(selected),
        passed=sum(1 for st in outcome.values() if st in PASSED),
        failing={t: why.get(t, reasons.get(t, "")) for t in failed},
        skipped={t: why.get(t, reasons.get(t, "")) for t in skipped},
        fixtures={f: status[f] for f in fixtures},
    )


def no_results(selected: Sequence[str], reason: str) -> Summary:
    """Return the counts of a run that recorded nothing: all failed."""
    failing = {test_id: reason for test_id in selected} or {"(no test selected)": reason}
    return Summary(selected=len(selected), passed=0, failing=failing, skipped={}, fixtures={})
