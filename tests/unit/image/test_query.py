"""Unit tests of :mod:`nimbus.image.query` (image-list query strings)."""

from __future__ import annotations

import datetime

import pytest

from nimbus import exception
from nimbus.image import query


def parse(**params: object) -> query.ImageQuery:
    return query.parse(params, default_limit=25, max_limit=100)


def test_defaults() -> None:
    parsed = parse()
    assert parsed.limit == 25
    assert parsed.marker is None
    assert parsed.sort == [("created_at", "desc"), ("id", "desc")]
    assert parsed.member_status == "accepted"
    assert parsed.os_hidden is False
    assert parsed.equals == {} and parsed.ranges == [] and parsed.properties == {}


def test_limit_is_capped_and_marker_kept() -> None:
    parsed = parse(limit="500", marker="abc")
    assert parsed.limit == 100
    assert parsed.marker == "abc"


@pytest.mark.parametrize("limit", ["-1", "ten"])
def test_bad_limit_is_refused(limit: str) -> None:
    with pytest.raises(exception.BadRequest):
        parse(limit=limit)


def test_sort_keys_and_dirs_get_id_last() -> None:
    parsed = parse(sort_key=["name", "size"], sort_dir=["asc", "desc"])
    assert parsed.sort == [("name", "asc"), ("size", "desc"), ("id", "desc")]


def test_sort_syntax() -> None:
    assert parse(sort="name:asc,size").sort[:2] == [("name", "asc"), ("size", "desc")]


def test_unknown_sort_key_is_refused() -> None:
    with pytest.raises(exception.BadRequest):
        parse(sort_key="nope")


def test_in_filter_and_owner() -> None:
    parsed = parse(name="in:a,b", owner="p1", status="active")
    assert parsed.equals == {"name": ["a", "b"], "owner": ["p1"], "status": ["active"]}


def test_bad_status_is_refused() -> None:
    with pytest.raises(exception.BadRequest, match="Invalid status"):
        parse(status="in:active,gone")


def test_size_and_time_ranges() -> None:
    parsed = parse(size_min="10", size_max="20", created_at="gte:2026-01-01T00:00:00Z")
    assert ("size", "gte", 10) in parsed.ranges
    assert ("size", "lte", 20) in parsed.ranges
    (time_filter,) = [r for r in parsed.ranges if r[0] == "created_at"]
    assert time_filter[1] == "gte"
    assert time_filter[2].replace(tzinfo=None) == datetime.datetime(2026, 1, 1)


def test_tags_booleans_and_custom_properties() -> None:
    parsed = parse(tag=["a", "b"], protected="true", os_hidden="false", hw_arch="x86_64")
    assert parsed.tags == ["a", "b"]
    assert parsed.protected is True
    assert parsed.os_hidden is False
    assert parsed.properties == {"hw_arch": "x86_64"}


def test_visibility_choice() -> None:
    assert parse(visibility="shared").visibility == "shared"
    with pytest.raises(exception.BadRequest):
        parse(visibility="secret")
