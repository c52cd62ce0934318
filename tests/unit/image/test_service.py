"""Unit tests of :class:`nimbus.image.ImageService` on SQLite and the fake store."""

from __future__ import annotations

from typing import Any

import pytest

from nimbus import exception
from nimbus.context import RequestContext
from nimbus.image import ImageService, patch


def create(service: ImageService, ctx: RequestContext, **values: Any) -> dict[str, Any]:
    return service.create(ctx, {"disk_format": "raw", "container_format": "bare", **values})


def ids(images: list[dict[str, Any]]) -> list[str]:
    return [image["id"] for image in images]


def test_create_and_get(fake_service: ImageService, ctx: RequestContext) -> None:
    image = create(fake_service, ctx, name="cirros", tags=["b", "a", "b"], hw_arch="x86_64")
    assert image["status"] == "queued"
    assert image["owner"] == "p1"
    assert image["visibility"] == "shared"
    assert image["tags"] == ["a", "b"]
    assert image["hw_arch"] == "x86_64"
    assert image["size"] is None and image["checksum"] is None
    assert fake_service.get(ctx, image["id"]) == image


def test_create_with_taken_id_conflicts(fake_service: ImageService, ctx: RequestContext) -> None:
    create(fake_service, ctx, id="0b9f5e7c-0000-4000-8000-000000000001")
    with pytest.raises(exception.Conflict):
        create(fake_service, ctx, id="0b9f5e7c-0000-4000-8000-000000000001")


def test_create_needs_a_project(fake_service: ImageService) -> None:
    with pytest.raises(exception.Forbidden, match="project"):
        create(fake_service, RequestContext(user_id="u1"))


def test_image_count_quota(fake_service: ImageService, ctx: RequestContext) -> None:
    fake_service.conf.set_override("image_count_quota", 1, group="image")
    create(fake_service, ctx)
    with pytest.raises(exception.QuotaExceeded):
        create(fake_service, ctx)


def test_private_images_are_hidden_from_other_projects(
    fake_service: ImageService, ctx: RequestContext, member_ctx: RequestContext
) -> None:
    image = create(fake_service, ctx, visibility="private")
    with pytest.raises(exception.NotFound):
        fake_service.get(member_ctx, image["id"])
    listed, more = fake_service.list(member_ctx, fake_service.list_query({}))
    assert image["id"] not in ids(listed)
    assert more is False


def test_list_query_uses_the_configured_limits(fake_service: ImageService) -> None:
    fake_service.conf.set_override("limit_param_default", 3, group="image")
    fake_service.conf.set_override("api_limit_max", 5, group="image")
    assert fake_service.list_query({}).limit == 3
    assert fake_service.list_query({"limit": "50"}).limit == 5
    assert fake_service.list_query({"name": "a"}).equals == {"name": ["a"]}


def test_list_pages_with_marker(fake_service: ImageService, ctx: RequestContext) -> None:
    made = [create(fake_service, ctx, name=f"img{n}")["id"] for n in range(5)]
    params = {"sort_key": "name", "sort_dir": "asc", "limit": "2"}
    first, more = fake_service.list(ctx, fake_service.list_query(params))
    assert ids(first) == made[:2] and more is True
    second, more = fake_service.list(
        ctx, fake_service.list_query({**params, "marker": first[-1]["id"]})
    )
    assert ids(second) == made[2:4] and more is True
    last, more = fake_service.list(
        ctx, fake_service.list_query({**params, "marker": second[-1]["id"]})
    )
    assert ids(last) == made[4:] and more is False


def test_list_filters(fake_service: ImageService, ctx: RequestContext) -> None:
    tagged = create(fake_service, ctx, name="a", tags=["gold"], hw_arch="arm")
    create(fake_service, ctx, name="b")
    by_tag, _ = fake_service.list(ctx, fake_service.list_query({"tag": "gold"}))
    assert ids(by_tag) == [tagged["id"]]
    by_prop, _ = fake_service.list(ctx, fake_service.list_query({"hw_arch": "arm"}))
    assert ids(by_prop) == [tagged["id"]]
    by_name, _ = fake_service.list(ctx, fake_service.list_query({"name": "in:b,c"}))
    assert [image["name"] for image in by_name] == ["b"]


def test_unknown_marker_is_a_bad_request(fake_service: ImageService, ctx: RequestContext) -> None:
    with pytest.raises(exception.BadRequest):
        fake_service.list(ctx, fake_service.list_query({"marker": "nope"}))


def test_update_applies_a_patch(fake_service: ImageService, ctx: RequestContext) -> None:
    image = create(fake_service, ctx, name="old", hw_arch="x86_64")
    changes = patch.parse(
        [
            {"op": "replace", "path": "/name", "value": "new"},
            {"op": "remove", "path": "/hw_arch"},
            {"op": "add", "path": "/os_distro", "value": "debian"},
        ]
    )
    updated = fake_service.update(ctx, image["id"], changes)
    assert updated["name"] == "new"
    assert "hw_arch" not in updated
    assert updated["os_distro"] == "debian"
    assert fake_service.get(ctx, image["id"]) == updated


def test_delete(fake_service: ImageService, ctx: RequestContext) -> None:
    image = create(fake_service, ctx)
    fake_service.delete(ctx, image["id"])
    with pytest.raises(exception.NotFound):
        fake_service.get(ctx, image["id"])


def test_protected_image_is_not_deleted(fake_service: ImageService, ctx: RequestContext) -> None:
    image = create(fake_service, ctx, protected=True)
    with pytest.raises(exception.Forbidden):
        fake_service.delete(ctx, image["id"])
    assert fake_service.get(ctx, image["id"])["protected"] is True


def test_tags(fake_service: ImageService, ctx: RequestContext) -> None:
    image = create(fake_service, ctx)
    fake_service.add_tag(ctx, image["id"], "x")
    fake_service.add_tag(ctx, image["id"], "x")
    assert fake_service.get(ctx, image["id"])["tags"] == ["x"]
    fake_service.remove_tag(ctx, image["id"], "x")
    assert fake_service.get(ctx, image["id"])["tags"] == []
    with pytest.raises(exception.NotFound):
        fake_service.remove_tag(ctx, image["id"], "x")


def test_queued_image_cannot_be_deactivated(
    fake_service: ImageService, ctx: RequestContext
) -> None:
    image = create(fake_service, ctx)
    with pytest.raises(exception.Forbidden, match="queued"):
        fake_service.deactivate(ctx, image["id"])


def test_members(
    fake_service: ImageService, ctx: RequestContext, member_ctx: RequestContext
) -> None:
    image = create(fake_service, ctx)
    member = fake_service.add_member(ctx, image["id"], "p2")
    assert (member["member_id"], member["status"]) == ("p2", "pending")
    with pytest.raises(exception.Conflict):
        fake_service.add_member(ctx, image["id"], "p2")
    # A pending member does not list the image by default, an accepted one does.
    listed, _ = fake_service.list(member_ctx, fake_service.list_query({}))
    assert image["id"] not in ids(listed)
    accepted = fake_service.update_member(member_ctx, image["id"], "p2", "accepted")
    assert accepted["status"] == "accepted"
    listed, _ = fake_service.list(member_ctx, fake_service.list_query({}))
    assert ids(listed) == [image["id"]]
    assert [m["member_id"] for m in fake_service.list_members(ctx, image["id"])] == ["p2"]
    fake_service.delete_member(ctx, image["id"], "p2")
    with pytest.raises(exception.NotFound):
        fake_service.get_member(ctx, image["id"], "p2")


def test_only_shared_images_have_members(fake_service: ImageService, ctx: RequestContext) -> None:
    image = create(fake_service, ctx, visibility="private")
    with pytest.raises(exception.Forbidden, match="shared"):
        fake_service.add_member(ctx, image["id"], "p2")
