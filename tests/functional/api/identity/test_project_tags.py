"""Project tags (``/v3/projects/{id}/tags``) through the whole identity app."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.functional.api.conftest import Identity, Member, assert_error


@pytest.fixture
def project(identity: Identity) -> dict[str, Any]:
    return identity.created("/projects", "project", {"name": "tagged", "tags": ["a", "c", "b"]})


def test_a_project_is_created_with_tags_and_shows_them(
    identity: Identity, project: dict[str, Any]
) -> None:
    assert project["tags"] == ["a", "c", "b"]
    shown = identity.request("GET", f"/projects/{project['id']}").json["project"]
    listed = identity.request("GET", "/projects", params={"name": "tagged"}).json["projects"]
    assert shown["tags"] == listed[0]["tags"] == ["a", "c", "b"]


def test_tags_are_added_checked_replaced_and_removed(
    identity: Identity, project: dict[str, Any]
) -> None:
    base = f"/projects/{project['id']}/tags"

    added = identity.request("PUT", f"{base}/new")
    assert added.status_code == 201
    assert identity.request("PUT", f"{base}/new").status_code == 201  # again: no change
    assert identity.request("GET", f"{base}/new").status_code == 204
    assert identity.request("HEAD", f"{base}/new").status_code == 204
    assert identity.request("GET", base).json["tags"] == ["a", "c", "b", "new"]

    replaced = identity.request("PUT", base, {"tags": ["x", "y"]})
    assert replaced.status_code == 200
    assert replaced.json["tags"] == ["x", "y"]
    assert_error(identity.request("GET", f"{base}/new"), 404)

    assert identity.request("DELETE", f"{base}/x").status_code == 204
    assert_error(identity.request("DELETE", f"{base}/x"), 404)
    assert identity.request("GET", base).json["tags"] == ["y"]
    assert identity.request("DELETE", base).status_code == 204
    assert identity.request("GET", base).json["tags"] == []
    patched = identity.request("PATCH", f"/projects/{project['id']}", {"project": {"tags": ["p"]}})
    assert patched.json["project"]["tags"] == ["p"]


@pytest.mark.parametrize(
    "tags",
    [["a,b"], ["a/b"], [""], ["x" * 256], ["dup", "dup"], [f"t{i}" for i in range(81)], "a", [1]],
)
def test_bad_tags_are_refused(identity: Identity, project: dict[str, Any], tags: Any) -> None:
    base = f"/projects/{project['id']}/tags"
    assert_error(identity.request("PUT", base, {"tags": tags}), 400)
    assert_error(
        identity.request("POST", "/projects", {"project": {"name": "n", "tags": tags}}), 400
    )
    assert identity.request("GET", base).json["tags"] == ["a", "c", "b"]


def test_a_project_holds_at_most_80_tags(identity: Identity, project: dict[str, Any]) -> None:
    base = f"/projects/{project['id']}/tags"
    identity.request("PUT", base, {"tags": [f"t{i}" for i in range(80)]})

    assert_error(identity.request("PUT", f"{base}/one-more"), 400)
    assert_error(identity.request("PUT", f"{base}/a,b"), 400)
    assert_error(identity.request("PUT", "/projects/nope/tags/x"), 404)
    assert_error(identity.request("GET", "/projects/nope/tags"), 404)


def test_members_read_their_own_projects_tags_and_change_none(
    identity: Identity, make_member: Callable[..., Member], project: dict[str, Any]
) -> None:
    member = make_member()
    own = f"/projects/{member.project['id']}/tags"
    other = f"/projects/{project['id']}/tags"

    assert identity.request("GET", own, token=member.token).json["tags"] == []
    assert_error(identity.request("PUT", f"{own}/mine", token=member.token), 403)
    assert_error(identity.request("GET", other, token=member.token), 403)
    assert_error(identity.request("GET", f"{other}/a", token=member.token), 403)
    assert_error(identity.request("PUT", other, {"tags": []}, token=member.token), 403)
    assert_error(identity.request("DELETE", other, token=member.token), 403)
    assert_error(identity.request("DELETE", f"{other}/a", token=member.token), 403)
    assert identity.request("GET", other).json["tags"] == ["a", "c", "b"]
