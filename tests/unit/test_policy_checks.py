"""nimbus.policy_checks: oslo.policy's checks, evaluated with the same outcomes."""

from __future__ import annotations

from typing import Any

import pytest
from oslo_policy import _checks, _parser

from nimbus import policy_checks

CREDS: list[dict[str, Any]] = [
    {"roles": ["admin"], "system_scope": "all", "is_admin_project": True, "user_id": "u1"},
    {"roles": ["member"], "system_scope": None, "is_admin_project": False, "user_id": "u2"},
    {"roles": ["reader"], "project_id": "p1", "user_id": "u1", "nested": {"a": ["x", "y"]}},
    {},
]
TARGETS: list[dict[str, Any]] = [
    {"target.token.user_id": "u1", "project_id": "p1", "name": "Member"},
    {"target.token.user_id": "u2", "project_id": "p2", "name": "x"},
    {},
]
GENERIC = [
    ("system_scope", "all"),
    ("is_admin_project", "True"),
    ("user_id", "%(target.token.user_id)s"),
    ("project_id", "%(project_id)s"),
    ("'Member'", "%(name)s"),
    ("True", "%(missing)s"),
    ("nested.a", "x"),
    ("nested.a", "z"),
]


def test_installed() -> None:
    assert policy_checks.installed()
    assert isinstance(_parser.parse_rule("user_id:%(user_id)s"), policy_checks.GenericCheck)


@pytest.mark.parametrize(("kind", "match"), GENERIC)
def test_generic_check_decides_as_oslo_policy(kind: str, match: str) -> None:
    ours = policy_checks.GenericCheck(kind, match)
    theirs = _checks.GenericCheck(kind, match)
    for creds in CREDS:
        for target in TARGETS:
            assert ours(target, creds, None) == theirs(target, creds, None), (creds, target)


class _Legacy(_checks.BaseCheck):
    """A check written before ``current_rule`` existed."""

    def __str__(self) -> str:
        return "legacy"

    def __call__(self, target: Any, cred: Any, enforcer: Any) -> bool:  # type: ignore[override]
        return bool(target.get("ok"))


class _Current(_checks.BaseCheck):
    def __init__(self) -> None:
        self.seen: list[str | None] = []

    def __str__(self) -> str:
        return "current"

    def __call__(self, target: Any, cred: Any, enforcer: Any, current_rule: Any = None) -> bool:
        self.seen.append(current_rule)
        return True


def test_evaluate_passes_current_rule_only_to_checks_that_take_it() -> None:
    legacy = _Legacy()
    assert policy_checks.evaluate(legacy, {"ok": True}, {}, None, "r") is True
    assert policy_checks.evaluate(legacy, {}, {}, None, "r") is False
    current = _Current()
    for _ in range(2):  # the second time from what was remembered
        assert policy_checks.evaluate(current, {}, {}, None, "the:rule") is True
    assert current.seen == ["the:rule", "the:rule"]


def test_rules_decide_as_before() -> None:
    rule = "rule:admin_required or role:service or user_id:%(target.token.user_id)s"
    rules = {
        "admin_required": "role:admin and (system_scope:all or is_admin_project:True)",
        "t": rule,
        "n": "not user_id:%(target.token.user_id)s",
    }

    class Enforcer:
        def __init__(self, parsed: dict[str, Any]) -> None:
            self.rules = parsed

    ours = Enforcer({k: _parser.parse_rule(v) for k, v in rules.items()})
    for creds in CREDS:
        for target in TARGETS:
            for name in ("t", "n"):
                got = policy_checks.evaluate(ours.rules[name], target, creds, ours, name)
                user_is = (
                    "target.token.user_id" in target
                    and creds.get("user_id") == target["target.token.user_id"]
                )
                admin = "admin" in creds.get("roles", ()) and (
                    creds.get("system_scope") == "all" or creds.get("is_admin_project") is True
                )
                expected = (admin or user_is) if name == "t" else not user_is
                assert got is expected, (name, creds, target)
