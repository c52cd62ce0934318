"""Tests of the change stamps shared by the workers of one server."""

from __future__ import annotations

import multiprocessing

from nimbus.common.changes import Change, Changes


def test_recording_a_change_gives_its_kind_a_new_stamp() -> None:
    changes = Changes()
    before = {change: changes.stamp(change) for change in Change}

    changes.record(Change.TOKENS)

    assert changes.stamp(Change.TOKENS) != before[Change.TOKENS]
    assert changes.stamp(Change.REVOCATIONS) == before[Change.REVOCATIONS]
    assert changes.stamp(Change.CATALOG) == before[Change.CATALOG]


def test_two_instances_share_nothing() -> None:
    first, second = Changes(), Changes()
    before = second.stamp(Change.REVOCATIONS)

    first.record(Change.REVOCATIONS)

    assert second.stamp(Change.REVOCATIONS) == before


def _record_and_report(changes: Changes, queue: multiprocessing.Queue) -> None:
    queue.put(changes.stamp(Change.CATALOG))
    changes.record(Change.REVOCATIONS)
    queue.put(changes.stamp(Change.REVOCATIONS))


def test_a_forked_process_shares_the_stamps_both_ways() -> None:
    # As gunicorn's workers: forked from the master after it made the stamps.
    context = multiprocessing.get_context("fork")
    changes = Changes()
    changes.record(Change.CATALOG)
    queue = context.Queue()

    child = context.Process(target=_record_and_report, args=(changes, queue))
    child.start()
    seen_by_child = queue.get(timeout=30)
    recorded_by_child = queue.get(timeout=30)
    child.join(30)

    assert child.exitcode == 0
    assert seen_by_child == changes.stamp(Change.CATALOG)
    assert changes.stamp(Change.REVOCATIONS) == recorded_by_child
