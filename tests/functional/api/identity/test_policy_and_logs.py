"""Policy overrides from a file, and what the logs may and may not contain."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import falcon.testing
import pytest

import nimbus.cmd.up
import nimbus.wsgi


def test_policy_file_overrides_a_default(
    conf, tmp_path, make_member: Callable[..., Any], identity
) -> None:
    member = make_member()
    assert identity.request("GET", "/users", token=member.token).status_code == 403

    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text('"identity:list_users": "role:member"\n')
    conf.set_override("policy_file", str(policy_file), group="oslo_policy")
    services = nimbus.wsgi.build_services(conf)
    try:
        client = falcon.testing.TestClient(nimbus.wsgi.build_app(services))
        result = client.simulate_get("/identity/v3/users", headers={"X-Auth-Token": member.token})
        assert result.status_code == 200, result.text
        # Everything the file does not mention keeps its default.
        result = client.simulate_post(
            "/identity/v3/projects",
            json={"project": {"name": "nope"}},
            headers={"X-Auth-Token": member.token},
        )
        assert result.status_code == 403
    finally:
        services.database.dispose()


def test_no_password_or_token_in_logs(identity, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "Sup3r-Secret-Pa55word"
    user = identity.created("/users", "user", {"name": "logged", "password": secret})
    token = identity.issue("logged", secret)
    identity.request(
        "GET", "/auth/tokens", token=identity.admin_token, headers={"X-Subject-Token": token}
    )
    identity.request("PATCH", f"/users/{user['id']}", {"user": {"password": secret + "2"}})
    identity.authenticate(identity.password_auth("logged", "wrong-" + secret))
    identity.request("DELETE", "/auth/tokens", headers={"X-Subject-Token": token})
    identity.request("GET", "/users", token=token)  # revoked by now: 401
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert text, "the requests should have been logged"
    for leaked in (secret, token, identity.admin_token, token[:40]):
        assert leaked not in text


def test_request_log_line_names_the_caller(identity, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="nimbus.api.middleware")
    result = identity.request("GET", "/projects")
    lines = [r.getMessage() for r in caplog.records if r.name == "nimbus.api.middleware"]
    request_id = result.headers["x-openstack-request-id"]
    line = next(line for line in lines if request_id in line)
    assert identity.admin_user["id"] in line
    assert identity.admin_project["id"] in line


def _admin_auth(password: str) -> dict[str, Any]:
    user = {"name": "admin", "domain": {"id": "default"}, "password": password}
    return {"auth": {"identity": {"methods": ["password"], "password": {"user": user}}}}


def test_restart_reuses_the_state_and_keeps_tokens_valid(conf) -> None:
    first = nimbus.cmd.up.prepare(conf)
    password = conf.state_path + "/admin-password"
    with open(password) as f:
        before = f.read().strip()
    services = nimbus.wsgi.build_services(conf)
    try:
        client = falcon.testing.TestClient(nimbus.wsgi.build_app(services))
        issued = client.simulate_post("/identity/v3/auth/tokens", json=_admin_auth(before))
        assert issued.status_code == 201, issued.text
        token = issued.headers["X-Subject-Token"]
    finally:
        services.database.dispose()

    second = nimbus.cmd.up.prepare(conf)

    with open(password) as f:
        assert f.read().strip() == before
    assert first == second
    services = nimbus.wsgi.build_services(conf)
    try:
        client = falcon.testing.TestClient(nimbus.wsgi.build_app(services))
        auth = client.simulate_post("/identity/v3/auth/tokens", json=_admin_auth(before))
        assert auth.status_code == 201
        headers = {"X-Auth-Token": auth.headers["X-Subject-Token"], "X-Subject-Token": token}
        checked = client.simulate_get("/identity/v3/auth/tokens", headers=headers)
        assert checked.status_code == 200, checked.text
    finally:
        services.database.dispose()


def test_a_domain_scoped_reader_sees_its_own_domain_only(identity) -> None:
    """Keystone's rule: a token scoped to a domain may show that domain."""
    mine = identity.created("/domains", "domain", {"name": "mine"})
    other = identity.created("/domains", "domain", {"name": "other"})
    user = identity.created("/users", "user", {"name": "domain-reader", "password": "pw-reader"})
    reader = identity.role("reader")["id"]
    identity.put(f"/domains/{mine['id']}/users/{user['id']}/roles/{reader}")
    token = identity.issue("domain-reader", "pw-reader", domain=mine["id"])

    shown = identity.request("GET", f"/domains/{mine['id']}", token=token)
    assert shown.status_code == 200, shown.text
    assert shown.json["domain"]["id"] == mine["id"]
    hidden = identity.request("GET", f"/domains/{other['id']}", token=token)
    identity.assert_error(hidden, 403)


@pytest.fixture
def request_logger():
    """The request line's logger, its level put back after the test."""
    logger = logging.getLogger(nimbus.cmd.up.REQUEST_LOGGER)
    level = logger.level
    yield logger
    logger.setLevel(level)


@pytest.mark.parametrize("log_requests", [False, True])
def test_nimbus_up_logs_request_lines_only_when_asked(
    conf, identity, caplog: pytest.LogCaptureFixture, request_logger, log_requests: bool
) -> None:
    caplog.set_level(logging.INFO)
    if log_requests:
        conf.set_override("log_requests", True, group="api")
    nimbus.cmd.up.configure_request_log(conf)
    result = identity.request("GET", "/projects")
    request_id = result.headers["x-openstack-request-id"]
    lines = [r.getMessage() for r in caplog.records if r.name == request_logger.name]
    assert any(request_id in line for line in lines) is log_requests
    # Warnings and errors of the middleware's logger are never held back.
    assert request_logger.isEnabledFor(logging.WARNING)


def test_nimbus_up_log_requests_flag() -> None:
    from nimbus.cmd import main

    parser = main.build_parser()
    assert parser.parse_args(["up"]).log_requests is None
    assert parser.parse_args(["up", "--log-requests"]).log_requests is True
