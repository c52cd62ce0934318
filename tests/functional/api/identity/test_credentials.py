"""Credentials (``/v3/credentials``) through the whole identity app, as their owners."""

from __future__ import annotations

import json
from collections.abc import Callable

from tests.functional.api.conftest import Identity, Member, assert_error


def _ec2(member: Member, access: str) -> dict:
    blob = json.dumps({"access": access, "secret": "s"})
    return {
        "credential": {
            "user_id": member.user["id"],
            "project_id": member.project["id"],
            "type": "ec2",
            "blob": blob,
        }
    }


def test_users_keep_their_credentials_to_themselves(
    identity: Identity, make_member: Callable[..., Member]
) -> None:
    ann, bob = make_member(), make_member()
    created = identity.request("POST", "/credentials", _ec2(ann, "ann-key"), token=ann.token)
    assert created.status_code == 201, created.text
    mine = created.json["credential"]
    path = f"/credentials/{mine['id']}"

    # Ann lists, reads, changes and deletes hers; Bob sees nothing and touches nothing.
    listed = identity.request("GET", "/credentials", token=ann.token).json["credentials"]
    assert [c["id"] for c in listed] == [mine["id"]]
    assert identity.request("GET", "/credentials", token=bob.token).json["credentials"] == []
    as_bob = identity.request(
        "GET", "/credentials", params={"user_id": ann.user["id"]}, token=bob.token
    )
    assert as_bob.json["credentials"] == []
    assert_error(identity.request("GET", path, token=bob.token), 403)
    assert_error(
        identity.request("PATCH", path, {"credential": {"blob": "{}"}}, token=bob.token), 403
    )
    assert_error(identity.request("DELETE", path, token=bob.token), 403)
    # Neither makes one for the other, nor gives one away.
    assert_error(identity.request("POST", "/credentials", _ec2(ann, "x"), token=bob.token), 403)
    give = {"credential": {"user_id": bob.user["id"]}}
    assert_error(identity.request("PATCH", path, give, token=ann.token), 403)
    assert identity.request("GET", path, token=ann.token).json["credential"] == mine

    # The admin sees everyone's.
    everyone = identity.request("GET", "/credentials").json["credentials"]
    assert mine["id"] in {c["id"] for c in everyone}
    assert identity.request("DELETE", path, token=ann.token).status_code == 204
    assert_error(identity.request("GET", path), 404)


def test_deleting_the_user_deletes_its_credentials(
    identity: Identity, make_member: Callable[..., Member]
) -> None:
    ann = make_member()
    cred = identity.created("/credentials", "credential", _ec2(ann, "k")["credential"])
    assert identity.request("DELETE", f"/users/{ann.user['id']}").status_code == 204
    assert_error(identity.request("GET", f"/credentials/{cred['id']}"), 404)
