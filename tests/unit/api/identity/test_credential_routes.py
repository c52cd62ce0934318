"""``/v3/credentials`` on the wire: bodies, links, filters and Keystone's errors."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from tests.unit.api.identity.test_identity_routes import URL, _error


def _body(**values: Any) -> dict[str, Any]:
    credential = {"user_id": "u1", "type": "ec2", "project_id": "p1"}
    credential["blob"] = json.dumps({"access": "AK", "secret": "S"})
    return {"credential": {**credential, **values}}


def test_create_show_update_delete(client: Any) -> None:
    result = client.simulate_post("/v3/credentials", json=_body())
    assert result.status_code == 201, result.text
    cred = result.json["credential"]
    assert cred["id"] == hashlib.sha256(b"AK").hexdigest()
    path = f"/v3/credentials/{cred['id']}"
    assert cred == {
        "id": cred["id"],
        "user_id": "u1",
        "project_id": "p1",
        "type": "ec2",
        "blob": _body()["credential"]["blob"],
        "links": {"self": f"{URL}{path}"},
    }
    assert client.simulate_get(path).json == {"credential": cred}

    new_blob = json.dumps({"access": "AK2", "secret": "S2"})
    patched = client.simulate_patch(path, json={"credential": {"blob": new_blob}})
    assert patched.status_code == 200, patched.text
    assert patched.json["credential"]["id"] == cred["id"]
    assert patched.json["credential"]["blob"] == new_blob
    assert client.simulate_delete(path).status_code == 204
    _error(client.simulate_get(path), 404)
    _error(client.simulate_delete(path), 404)


def test_list_filters_by_user_and_type(client: Any) -> None:
    client.simulate_post("/v3/credentials", json=_body())
    other = {"user_id": "u2", "type": "cert", "blob": "b"}
    client.simulate_post("/v3/credentials", json={"credential": other})
    body = client.simulate_get("/v3/credentials").json
    assert {c["user_id"] for c in body["credentials"]} == {"u1", "u2"}
    assert body["links"] == {"self": f"{URL}/v3/credentials", "previous": None, "next": None}
    for params, users in (({"user_id": "u2"}, ["u2"]), ({"type": "ec2"}, ["u1"])):
        listed = client.simulate_get("/v3/credentials", params=params).json["credentials"]
        assert [c["user_id"] for c in listed] == users
    assert all(c["links"]["self"].startswith(f"{URL}/v3/credentials/") for c in listed)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"credential": "x"},
        {"credential": {"type": "cert", "blob": "b"}},  # no user_id
        {"credential": {"user_id": "u", "blob": "b"}},  # no type
        {"credential": {"user_id": "u", "type": "cert"}},  # no blob
        {"credential": {"user_id": "u", "type": "cert", "blob": {"access": "a"}}},
        {"credential": {"user_id": "u", "type": "ec2", "blob": '{"access": "a"}'}},  # no project
        _body(blob="not json"),
        _body(blob=json.dumps({"secret": "no access"})),
        _body(blob='{"access": "\\ud800"}'),  # a lone surrogate: nothing to hash
    ],
)
def test_invalid_creates_are_400(client: Any, body: dict[str, Any]) -> None:
    _error(client.simulate_post("/v3/credentials", json=body), 400)


def test_a_second_ec2_credential_with_the_same_access_key_is_409(client: Any) -> None:
    assert client.simulate_post("/v3/credentials", json=_body()).status_code == 201
    _error(client.simulate_post("/v3/credentials", json=_body()), 409)


def test_invalid_updates_are_400(client: Any) -> None:
    cred = client.simulate_post("/v3/credentials", json=_body()).json["credential"]
    path = f"/v3/credentials/{cred['id']}"
    for body in (
        {"credential": {}},
        {"credential": {"id": "another"}},
        {"credential": {"blob": 5}},
        {"credential": {"blob": "not json"}},
    ):
        _error(client.simulate_patch(path, json=body), 400)
    _error(client.simulate_patch("/v3/credentials/nope", json={"credential": {"blob": "b"}}), 404)
