"""Disabling a domain refuses its users' tokens at once, wherever they are scoped."""

from __future__ import annotations

from tests.functional.api.conftest import Identity


def test_disabling_a_users_domain_refuses_all_their_tokens_at_once(identity: Identity) -> None:
    domain = identity.created("/domains", "domain", {"name": "elsewhere"})
    user = identity.created(
        "/users", "user", {"name": "visitor", "password": "pw-visitor", "domain_id": domain["id"]}
    )
    # The user's role is on a project of the default domain: its token's
    # scope is not the user's domain.
    project = identity.created("/projects", "project", {"name": "hosted"})
    member = identity.role("member")["id"]
    identity.put(f"/projects/{project['id']}/users/{user['id']}/roles/{member}")
    auth = identity.password_auth(user["id"], "pw-visitor", project=project["id"], by_id=True)
    issued = identity.authenticate(auth)
    assert issued.status_code == 201, issued.text
    token = issued.headers["X-Subject-Token"]
    assert identity.works(token)  # validated once: now in the validation cache

    changed = identity.request("PATCH", f"/domains/{domain['id']}", {"domain": {"enabled": False}})
    assert changed.status_code == 200, changed.text

    assert not identity.works(token)
    checked = identity.request(
        "GET", "/auth/tokens", headers={"X-Subject-Token": token}, token=identity.admin_token
    )
    identity.assert_error(checked, 404)
