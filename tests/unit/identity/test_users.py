"""Users and groups: policy, default domains, memberships and the token cache."""

from __future__ import annotations

import dataclasses
from unittest import mock

import pytest

from nimbus import exception
from nimbus.drivers.identity import ListQuery
from nimbus.identity.service import IdentityService
from nimbus.policy import INTERNAL
from tests.unit.identity.conftest import Callers


def test_a_reader_cannot_create_a_user(service: IdentityService, callers: Callers) -> None:
    with pytest.raises(exception.PolicyNotAuthorized, match="identity:create_user"):
        service.users.create_user(callers.reader, name="eve", password="pw")
    assert service.users.list_users(callers.reader, ListQuery(name="eve")) == []


def test_a_member_reads_itself_only(service: IdentityService, callers: Callers) -> None:
    me = callers.member.user_id or ""
    assert service.users.get_user(callers.member, me).name == "mia"
    with pytest.raises(exception.PolicyNotAuthorized, match="identity:get_user"):
        service.users.get_user(callers.member, callers.admin.user_id or "")
    with pytest.raises(exception.PolicyNotAuthorized, match="identity:list_users"):
        service.users.list_users(callers.member, ListQuery())


def test_users_and_groups_default_to_the_callers_domain(
    service: IdentityService, callers: Callers
) -> None:
    elsewhere = dataclasses.replace(callers.admin, project_domain_id=callers.other_domain_id)
    assert service.users.create_user(elsewhere, name="u1").domain_id == callers.other_domain_id
    assert service.users.create_group(elsewhere, name="g1").domain_id == callers.other_domain_id
    assert service.users.create_user(INTERNAL, name="u2").domain_id == "default"
    assert service.users.create_group(INTERNAL, name="g2").domain_id == "default"
    given = service.users.create_user(elsewhere, name="u3", domain_id="default")
    assert given.domain_id == "default"
    # As Keystone: an unknown domain is a 404, not a 400.
    with pytest.raises(exception.NotFound, match="nope"):
        service.users.create_user(callers.admin, name="u4", domain_id="nope")
    with pytest.raises(exception.NotFound, match="nope"):
        service.users.create_group(callers.admin, name="g4", domain_id="nope")


def test_a_groups_domain_cannot_change(service: IdentityService, callers: Callers) -> None:
    group = service.users.create_group(callers.admin, name="ops")
    same = service.users.update_group(
        callers.admin, group.id, {"domain_id": "default", "description": "d"}
    )
    assert same.description == "d"
    with pytest.raises(exception.ValidationError, match="group/domain_id"):
        service.users.update_group(callers.admin, group.id, {"domain_id": callers.other_domain_id})


def test_memberships_forget_cached_tokens(service: IdentityService, callers: Callers) -> None:
    group = service.users.create_group(callers.admin, name="ops")
    me = callers.member.user_id or ""
    with mock.patch.object(service.auth, "forget_cached") as forget:
        service.users.add_user_to_group(callers.admin, me, group.id)
        assert forget.call_count == 1
        service.users.check_user_in_group(callers.reader, me, group.id)
        service.users.remove_user_from_group(callers.admin, me, group.id)
        assert forget.call_count == 2
        with pytest.raises(exception.NotFound, match="membership"):
            service.users.check_user_in_group(callers.admin, me, group.id)
        service.users.delete_group(callers.admin, group.id)
        assert forget.call_count == 3
    with pytest.raises(exception.PolicyNotAuthorized, match="identity:add_user_to_group"):
        service.users.add_user_to_group(callers.member, me, group.id)


def test_a_password_change_needs_the_old_password(
    service: IdentityService, callers: Callers
) -> None:
    me = callers.member.user_id or ""
    with pytest.raises(exception.AuthenticationFailed):
        service.users.change_password(
            callers.member, me, {"original_password": "wrong", "password": "new"}
        )
    service.users.change_password(
        callers.member, me, {"original_password": "pw", "password": "new"}
    )
    assert service.users.authenticate(me, "new").id == me
    # As Keystone: knowing the current password is enough, whoever asks.
    service.users.change_password(callers.admin, me, {"original_password": "new", "password": "x"})
    assert service.users.authenticate(me, "x").id == me
