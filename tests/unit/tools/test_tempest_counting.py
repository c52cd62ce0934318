"""Counting per selected test, as the shared harness counts."""

from __future__ import annotations

from tests.unit.tools.subunit_stream import packet, ran
from tools.tempest.counting import count, no_results
from tools.tempest.subunit_v2 import TestResult, read_results

CLASS = "tempest.api.identity.admin.v3.test_trusts.TrustsV3TestJSON"
OTHER = "tempest.api.identity.admin.v3.test_users.UsersV3TestJSON"


def ids(owner: str, *names: str) -> list[str]:
    return [f"{owner}.{name}[id-{i}]" for i, name in enumerate(names)]


def test_every_test_of_a_class_whose_set_up_skipped_is_skipped() -> None:
    trusts = ids(CLASS, "test_a", "test_b", "test_c")
    users = ids(OTHER, "test_x")
    stream = ran(f"setUpClass ({CLASS})", "skip", reason="Trust support is disabled") + ran(
        users[0], "success"
    )
    summary = count(read_results(stream), trusts + users)
    assert (summary.passed, summary.failed, len(summary.skipped)) == (1, 0, 3)
    assert summary.skipped[trusts[0]] == f"setUpClass ({CLASS}): Trust support is disabled"
    assert summary.line("identity") == "tempest identity: 1 passed, 0 failed, 3 skipped"
    assert summary.ok
    assert summary.fixtures == {f"setUpClass ({CLASS})": "skip"}


def test_every_test_of_a_class_whose_set_up_failed_fails_once_each() -> None:
    trusts = ids(CLASS, "test_a", "test_b")
    stream = ran(f"setUpClass ({CLASS})", "fail", reason="Conflict 409")
    summary = count(read_results(stream), trusts)
    assert list(summary.failing) == trusts  # the fixture itself is not one more
    assert summary.failing[trusts[1]].endswith("Conflict 409")
    assert not summary.ok


def test_a_selected_test_without_a_result_failed() -> None:
    selected = ids(OTHER, "test_ran", "test_lost")
    summary = count(read_results(ran(selected[0], "success")), selected)
    assert summary.failing == {selected[1]: "no result recorded (not run)"}
    assert summary.passed == 1


def test_a_failed_tear_down_is_one_more_failure() -> None:
    selected = ids(OTHER, "test_x", "test_y")
    stream = (
        ran(selected[0], "success")
        + ran(selected[1], "success")
        + ran(f"tearDownClass ({OTHER})", "fail", reason="cleanup 500")
    )
    summary = count(read_results(stream), selected)
    assert (summary.passed, summary.failed, summary.selected) == (2, 1, 2)
    assert list(summary.failing) == [f"tearDownClass ({OTHER})"]
    assert summary.failing[f"tearDownClass ({OTHER})"] == "cleanup 500"


def test_a_failed_set_up_no_selected_test_took_counts_once() -> None:
    summary = count(read_results(ran(f"setUpClass ({CLASS})", "fail")), ids(OTHER, "t"))
    assert sorted(summary.failing) == [f"setUpClass ({CLASS})", ids(OTHER, "t")[0]]


def test_a_set_up_only_covers_its_own_class_not_one_with_a_longer_name() -> None:
    longer = ids(CLASS + "Admin", "test_z")
    summary = count(read_results(ran(f"setUpClass ({CLASS})", "skip")), longer)
    assert summary.failing == {longer[0]: "no result recorded (not run)"}


def test_outcomes_map_to_passed_failed_skipped() -> None:
    results = [
        TestResult("a", "success"),
        TestResult("b", "xfail"),
        TestResult("c", "uxsuccess"),
        TestResult("d", "skip", {"reason": b"no"}),
        TestResult("e", "fail", {"traceback": b"x" * 1000}),
        TestResult("f", "inprogress"),  # never ended: no result
    ]
    summary = count(results, list("abcdef"))
    assert (summary.passed, summary.failed, len(summary.skipped)) == (2, 3, 1)
    assert summary.failing["e"] == "x" * 400
    assert summary.failing["f"] == "no result recorded (not run)"
    assert summary.skipped == {"d": "no"}


def test_results_of_tests_not_selected_still_count() -> None:
    summary = count([TestResult("a", "success"), TestResult("b", "success")], ["a"])
    assert summary.passed == 2


def test_the_json_has_the_harness_keys() -> None:
    stream = ran("a", "fail", reason="bad") + packet("b", "skip")
    data = count(read_results(stream), ["a", "b"]).as_json()
    assert data == {
        "selected": 2,
        "passed": 0,
        "failed": 1,
        "skipped": 1,
        "failing_ids": ["a"],
        "failing_reasons": {"a": "bad"},
        "skipped_ids": {"b": ""},
        "class_fixtures": {},
    }


def test_a_run_without_results_fails_every_selected_test() -> None:
    summary = no_results(["a", "b"], "tempest crashed")
    assert summary.line("image") == "tempest image: 0 passed, 2 failed, 0 skipped"
    assert no_results([], "nothing").failed == 1
