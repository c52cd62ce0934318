"""The compute API's key pairs, quotas and limits, through Falcon's simulator."""

from __future__ import annotations

import base64
import hashlib

import falcon.testing
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

V = "/v2.1"


def as_(who: str) -> dict[str, str]:
    return {"X-Auth-Token": who}


def new_public_key() -> str:
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    text = key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return text.decode() + " someone@example"


def md5_fingerprint(public_key: str) -> str:
    digest = hashlib.md5(base64.b64decode(public_key.split()[1])).hexdigest()
    return ":".join(digest[i : i + 2] for i in range(0, 32, 2))


def test_create_makes_a_key_and_returns_the_private_half_once(
    client: falcon.testing.TestClient,
) -> None:
    resp = client.simulate_post(f"{V}/os-keypairs", json={"keypair": {"name": "k1"}})
    assert resp.status_code == 200
    pair = resp.json["keypair"]
    assert pair["private_key"].startswith("-----BEGIN RSA PRIVATE KEY-----")
    private = serialization.load_pem_private_key(pair["private_key"].encode(), password=None)
    public = private.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    assert pair["public_key"].split()[:2] == public.decode().split()
    assert pair["fingerprint"] == md5_fingerprint(pair["public_key"])
    assert pair["user_id"] == "u1"
    shown = client.simulate_get(f"{V}/os-keypairs/k1").json["keypair"]
    assert "private_key" not in shown
    assert shown["public_key"] == pair["public_key"]
    assert shown["deleted"] is False and shown["user_id"] == "u1"


def test_import_list_show_delete(client: falcon.testing.TestClient) -> None:
    key = new_public_key()
    resp = client.simulate_post(
        f"{V}/os-keypairs", json={"keypair": {"name": "my key", "public_key": key}}
    )
    assert resp.status_code == 200
    pair = resp.json["keypair"]
    assert pair["public_key"] == key
    assert "private_key" not in pair
    assert pair["fingerprint"] == md5_fingerprint(key)
    listed = client.simulate_get(f"{V}/os-keypairs").json
    assert listed == {
        "keypairs": [
            {"keypair": {"name": "my key", "public_key": key, "fingerprint": pair["fingerprint"]}}
        ]
    }
    assert client.simulate_delete(f"{V}/os-keypairs/my key").status_code == 202
    gone = client.simulate_get(f"{V}/os-keypairs/my key")
    assert gone.status_code == 404
    assert gone.json["itemNotFound"]["message"] == "Keypair my key not found for user u1"
    assert client.simulate_delete(f"{V}/os-keypairs/my key").status_code == 404


def test_key_pairs_are_their_users_own(client: falcon.testing.TestClient) -> None:
    key = new_public_key()
    client.simulate_post(f"{V}/os-keypairs", json={"keypair": {"name": "k", "public_key": key}})
    assert client.simulate_get(f"{V}/os-keypairs", headers=as_("member")).json == {"keypairs": []}
    assert client.simulate_get(f"{V}/os-keypairs/k", headers=as_("member")).status_code == 404
    assert client.simulate_delete(f"{V}/os-keypairs/k", headers=as_("other")).status_code == 404
    # Another user may use the same name.
    mine = client.simulate_post(
        f"{V}/os-keypairs",
        json={"keypair": {"name": "k", "public_key": key}},
        headers=as_("member"),
    )
    assert mine.status_code == 200 and mine.json["keypair"]["user_id"] == "u2"
    assert client.simulate_get(f"{V}/os-keypairs/k").json["keypair"]["user_id"] == "u1"


def test_duplicate_name_is_409(client: falcon.testing.TestClient) -> None:
    body = {"keypair": {"name": "k", "public_key": new_public_key()}}
    assert client.simulate_post(f"{V}/os-keypairs", json=body).status_code == 200
    again = client.simulate_post(f"{V}/os-keypairs", json=body)
    assert again.status_code == 409
    assert again.json["conflictingRequest"]["message"] == "Key pair 'k' already exists."


@pytest.mark.parametrize(
    "body",
    [
        {"name": ""},
        {"name": "   "},
        {"name": "x" * 256},
        {"name": "key_/.\\@:"},
        {"name": "k", "public_key": ""},
        {"name": "k", "public_key": "ssh-rsa not-base64!"},
        {"name": "k", "public_key": "ssh-rsa " + "A" * 2048},
        {"name": "k", "public_key": "just one word"},
        {"name": "k", "type": "x509"},
        {"public_key": "ssh-rsa AAAA"},
    ],
)
def test_bad_key_pairs_are_400(client: falcon.testing.TestClient, body: dict) -> None:
    resp = client.simulate_post(f"{V}/os-keypairs", json={"keypair": body})
    assert resp.status_code == 400, resp.text
    assert "badRequest" in resp.json
    assert client.simulate_get(f"{V}/os-keypairs").json == {"keypairs": []}


def test_key_pair_quota_refuses_with_403_and_stores_nothing(
    client: falcon.testing.TestClient,
) -> None:
    set_to_one = client.simulate_put(f"{V}/os-quota-sets/p1", json={"quota_set": {"key_pairs": 1}})
    assert set_to_one.status_code == 200
    assert set_to_one.json["quota_set"]["key_pairs"] == 1
    first = {"keypair": {"name": "a", "public_key": new_public_key()}}
    assert client.simulate_post(f"{V}/os-keypairs", json=first).status_code == 200
    second = {"keypair": {"name": "b", "public_key": new_public_key()}}
    refused = client.simulate_post(f"{V}/os-keypairs", json=second)
    assert refused.status_code == 403
    assert refused.json["forbidden"]["message"] == "Quota exceeded, too many key pairs."
    names = [k["keypair"]["name"] for k in client.simulate_get(f"{V}/os-keypairs").json["keypairs"]]
    assert names == ["a"]
    # Below what is in use only with force.
    below = client.simulate_put(f"{V}/os-quota-sets/p1", json={"quota_set": {"key_pairs": 0}})
    assert below.status_code == 400
    forced = client.simulate_put(
        f"{V}/os-quota-sets/p1", json={"quota_set": {"key_pairs": 0, "force": True}}
    )
    assert forced.status_code == 200


def test_quota_sets(client: falcon.testing.TestClient) -> None:
    shown = client.simulate_get(f"{V}/os-quota-sets/p1").json["quota_set"]
    assert shown["id"] == "p1"
    assert (shown["instances"], shown["cores"], shown["ram"], shown["key_pairs"]) == (
        10,
        20,
        51200,
        100,
    )
    assert shown["injected_file_path_bytes"] == 255
    assert client.simulate_get(f"{V}/os-quota-sets/p1", headers=as_("member")).json == {
        "quota_set": shown
    }
    assert client.simulate_get(f"{V}/os-quota-sets/p1", headers=as_("other")).status_code == 403
    refused = client.simulate_put(
        f"{V}/os-quota-sets/p1", json={"quota_set": {"instances": 50}}, headers=as_("member")
    )
    assert refused.status_code == 403
    updated = client.simulate_put(
        f"{V}/os-quota-sets/p1", json={"quota_set": {"instances": 50, "cores": -1}}
    )
    assert updated.json["quota_set"]["instances"] == 50
    assert updated.json["quota_set"]["cores"] == -1
    assert "id" not in updated.json["quota_set"]
    assert client.simulate_get(f"{V}/os-quota-sets/p2").json["quota_set"]["instances"] == 10
    defaults = client.simulate_get(f"{V}/os-quota-sets/p1/defaults", headers=as_("member"))
    assert defaults.json["quota_set"]["instances"] == 10
    assert client.simulate_delete(f"{V}/os-quota-sets/p1").status_code == 202
    assert client.simulate_get(f"{V}/os-quota-sets/p1").json["quota_set"]["instances"] == 10


@pytest.mark.parametrize(
    "body",
    [{"instances": -2}, {"instances": "many"}, {"bogus": 1}, {"instances": 1.5}],
)
def test_bad_quota_updates_are_400(client: falcon.testing.TestClient, body: dict) -> None:
    resp = client.simulate_put(f"{V}/os-quota-sets/p1", json={"quota_set": body})
    assert resp.status_code == 400, resp.text
    assert client.simulate_get(f"{V}/os-quota-sets/p1").json["quota_set"]["instances"] == 10


def test_detail_and_limits_count_what_is_used(client: falcon.testing.TestClient) -> None:
    client.simulate_post(
        f"{V}/os-keypairs", json={"keypair": {"name": "k", "public_key": new_public_key()}}
    )
    detail = client.simulate_get(f"{V}/os-quota-sets/p1/detail").json["quota_set"]
    assert detail["key_pairs"] == {"limit": 100, "in_use": 1, "reserved": 0}
    assert detail["instances"] == {"limit": 10, "in_use": 0, "reserved": 0}
    limits = client.simulate_get(f"{V}/limits", headers=as_("member")).json["limits"]
    assert limits["rate"] == []
    absolute = limits["absolute"]
    assert absolute["maxTotalInstances"] == 10
    assert absolute["maxTotalKeypairs"] == 100
    assert absolute["totalInstancesUsed"] == 0
