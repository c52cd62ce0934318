"""Credentials: ids, validation, encryption at rest, policy and what deletes them."""

from __future__ import annotations

import hashlib
import json
import os
import stat

import pytest
import sqlalchemy as sa

from nimbus import exception
from nimbus.db.repository import Page
from nimbus.identity import credentials
from nimbus.identity.service import IdentityService
from nimbus.policy import INTERNAL
from tests.unit.identity.conftest import Callers


def _ec2(access: str, **more: str) -> str:
    return json.dumps({"access": access, "secret": "s3cret", **more})


def _create(service: IdentityService, ctx, user_id: str, **values):
    values.setdefault("type", "cert")
    values.setdefault("blob", "opaque")
    return service.credentials.create_credential(ctx, user_id=user_id, **values)


def test_an_ec2_credential_is_named_by_its_access_key(
    service: IdentityService, callers: Callers
) -> None:
    me = callers.member.user_id or ""
    blob = _ec2("AKIA1")
    cred = _create(
        service, callers.member, me, type="ec2", blob=blob, project_id=callers.member_project_id
    )
    assert cred["id"] == hashlib.sha256(b"AKIA1").hexdigest()
    assert cred == {
        "id": cred["id"],
        "user_id": me,
        "project_id": callers.member_project_id,
        "type": "ec2",
        "blob": blob,
    }
    with pytest.raises(exception.Conflict):
        _create(service, callers.member, me, type="ec2", blob=blob, project_id="p")
    other = _create(service, callers.member, me, extra={"label": "x"})
    assert len(other["id"]) == 32 and other["label"] == "x" and other["project_id"] is None


@pytest.mark.parametrize(
    ("blob", "message"),
    [("not json", "Invalid blob"), ("[]", "JSON object"), ('{"secret": "s"}', "'access'")],
)
def test_an_ec2_blob_must_be_an_object_with_access(
    service: IdentityService, callers: Callers, blob: str, message: str
) -> None:
    with pytest.raises(exception.ValidationError, match=message):
        _create(service, callers.admin, "u", type="ec2", blob=blob, project_id="p")


def test_the_blob_is_encrypted_at_rest_with_the_primary_keys_hash(
    service: IdentityService, callers: Callers
) -> None:
    cred = _create(service, callers.admin, "u", blob="top secret")
    with service.db.reader() as session:
        stored, key_hash = session.execute(
            sa.text("SELECT encrypted_blob, key_hash FROM credentials WHERE id = :id"),
            {"id": cred["id"]},
        ).one()
    assert "top secret" not in stored
    keys = credentials.key_repository(service.conf)
    primary = keys.load()[max(keys.load())]
    assert key_hash == hashlib.sha256(primary).hexdigest()
    assert service.credentials.get_credential(callers.admin, cred["id"])["blob"] == "top secret"


def test_the_keys_are_their_own_repository_of_private_files(service: IdentityService) -> None:
    keys = credentials.key_repository(service.conf)
    assert keys.path.endswith("credential-keys")
    assert stat.S_IMODE(os.stat(keys.path).st_mode) == 0o700
    for name in os.listdir(keys.path):
        assert stat.S_IMODE(os.stat(os.path.join(keys.path, name)).st_mode) == 0o600
    # Set up again (a restart): the same keys, so stored blobs stay readable.
    before = keys.load()
    assert keys.initialize() == []
    assert keys.load() == before


def test_a_user_sees_and_changes_only_its_own_credentials(
    service: IdentityService, callers: Callers
) -> None:
    me = callers.member.user_id or ""
    admin_id = callers.admin.user_id or ""
    mine = _create(service, callers.member, me)
    theirs = _create(service, callers.admin, admin_id)
    with pytest.raises(exception.PolicyNotAuthorized, match="identity:create_credential"):
        _create(service, callers.member, admin_id)

    listed = service.credentials.list_credentials(callers.member)
    assert [c["id"] for c in listed] == [mine["id"]]
    assert service.credentials.list_credentials(callers.member, user_id=admin_id) == []
    everything = {c["id"] for c in service.credentials.list_credentials(callers.reader)}
    assert everything == {mine["id"], theirs["id"]}

    for call in (
        lambda: service.credentials.get_credential(callers.member, theirs["id"]),
        lambda: service.credentials.update_credential(callers.member, theirs["id"], {"blob": "x"}),
        lambda: service.credentials.delete_credential(callers.member, theirs["id"]),
        # An unknown id is refused the same way: it tells nothing.
        lambda: service.credentials.get_credential(callers.member, "nope"),
    ):
        with pytest.raises(exception.PolicyNotAuthorized):
            call()
    # Nor can an owner give its credential away.
    with pytest.raises(exception.PolicyNotAuthorized, match="identity:update_credential"):
        service.credentials.update_credential(callers.member, mine["id"], {"user_id": admin_id})
    # A reader reads but does not write.
    with pytest.raises(exception.PolicyNotAuthorized, match="identity:delete_credential"):
        service.credentials.delete_credential(callers.reader, mine["id"])
    with pytest.raises(exception.NotFound, match="Could not find credential: nope."):
        service.credentials.get_credential(callers.admin, "nope")
    service.credentials.delete_credential(callers.member, mine["id"])
    assert service.credentials.list_credentials(callers.member) == []


def test_listing_filters_and_fills_pages_with_what_the_caller_may_see(
    service: IdentityService, callers: Callers
) -> None:
    me = callers.member.user_id or ""
    for _ in range(3):
        _create(service, INTERNAL, "someone-else")
    mine = sorted(_create(service, INTERNAL, me)["id"] for _ in range(3))
    ec2 = _create(service, INTERNAL, me, type="ec2", blob=_ec2("A"), project_id="p")
    page = service.credentials.list_credentials(callers.member, type="cert", page=Page(limit=2))
    assert [c["id"] for c in page] == mine[:2]
    rest = service.credentials.list_credentials(
        callers.member, type="cert", page=Page(limit=2, marker=mine[1])
    )
    assert [c["id"] for c in rest] == mine[2:]
    by_type = service.credentials.list_credentials(callers.admin, type="ec2")
    assert [c["id"] for c in by_type] == [ec2["id"]]
    assert len(service.credentials.list_credentials(callers.admin, user_id="someone-else")) == 3


def test_an_update_changes_the_blob_but_never_the_id(
    service: IdentityService, callers: Callers
) -> None:
    me = callers.member.user_id or ""
    cred = _create(
        service, callers.member, me, type="ec2", blob=_ec2("OLD"), project_id="p", extra={"a": 1}
    )
    new_blob = _ec2("NEW")
    updated = service.credentials.update_credential(
        callers.member, cred["id"], {"blob": new_blob, "b": 2}
    )
    assert updated["id"] == cred["id"] and updated["blob"] == new_blob
    assert (updated["a"], updated["b"]) == (1, 2)
    assert service.credentials.get_credential(callers.member, cred["id"])["blob"] == new_blob
    kept = service.credentials.update_credential(callers.member, cred["id"], {"c": 3})
    assert kept["blob"] == new_blob
    with pytest.raises(exception.ValidationError, match="Invalid blob"):
        service.credentials.update_credential(callers.member, cred["id"], {"blob": "{"})
    with pytest.raises(exception.ValidationError, match="trust_id can not be updated"):
        service.credentials.update_credential(
            callers.member, cred["id"], {"blob": _ec2("NEW", trust_id="t")}
        )


def test_an_ec2_credential_needs_a_project(service: IdentityService, callers: Callers) -> None:
    cred = _create(service, callers.admin, "u")
    with pytest.raises(exception.ValidationError, match="project_id"):
        service.credentials.update_credential(callers.admin, cred["id"], {"type": "ec2"})
    changed = service.credentials.update_credential(
        callers.admin, cred["id"], {"type": "ec2", "project_id": "p"}
    )
    assert (changed["type"], changed["project_id"], changed["blob"]) == ("ec2", "p", "opaque")
    # Keystone's rule, which `openstack credential set` without --project relies on:
    # the project the credential has is enough, even when the body clears it.
    cleared = service.credentials.update_credential(
        callers.admin, cred["id"], {"type": "ec2", "project_id": None}
    )
    assert cleared["project_id"] is None


def test_deleting_a_user_or_a_project_deletes_its_credentials(
    service: IdentityService, callers: Callers
) -> None:
    user = service.users.create_user(INTERNAL, name="leaver", password="pw")
    project = service.resources.create_project(INTERNAL, name="closing")
    gone_with_user = _create(service, INTERNAL, user.id)
    gone_with_project = _create(service, INTERNAL, "u", project_id=project["id"])
    stays = _create(service, INTERNAL, "u", project_id=callers.member_project_id)

    service.users.delete_user(callers.admin, user.id)
    service.resources.delete_project(callers.admin, project["id"])

    for cred in (gone_with_user, gone_with_project):
        with pytest.raises(exception.NotFound):
            service.credentials.get_credential(callers.admin, cred["id"])
    assert service.credentials.get_credential(callers.admin, stays["id"])["blob"] == "opaque"
