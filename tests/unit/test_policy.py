"""nimbus.policy: the enforcer looks for policy file changes at most once a second."""

from __future__ import annotations

import pytest

from nimbus import exception
from nimbus.context import RequestContext
from nimbus.policy import RELOAD_INTERVAL, Enforcer

MEMBER = RequestContext(user_id="u", project_id="p", roles=["member"], authenticated=True)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_policy_file_takes_effect_within_the_reload_interval(conf, tmp_path) -> None:
    policy_file = tmp_path / "policy.yaml"
    conf.set_override("policy_file", str(policy_file), group="oslo_policy")
    clock = Clock()
    enforcer = Enforcer(conf, clock=clock)
    assert not enforcer.check(MEMBER, "identity:list_users")

    policy_file.write_text('"identity:list_users": "role:member"\n')
    clock.now += RELOAD_INTERVAL / 2
    # Not looked for yet: the defaults still hold.
    with pytest.raises(exception.PolicyNotAuthorized):
        enforcer.authorize(MEMBER, "identity:list_users")

    clock.now += RELOAD_INTERVAL
    assert enforcer.check(MEMBER, "identity:list_users")
    # The rest keeps its defaults.
    assert not enforcer.check(MEMBER, "identity:create_user")

    policy_file.write_text('"identity:list_users": "role:admin"\n')
    clock.now += RELOAD_INTERVAL
    assert not enforcer.check(MEMBER, "identity:list_users")
