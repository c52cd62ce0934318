"""Bootstrap run again: it changes only what differs, as ``keystone-manage bootstrap``."""

from __future__ import annotations

import pytest

from nimbus import exception
from nimbus.identity import bootstrap
from nimbus.identity.service import IdentityService
from nimbus.policy import INTERNAL


def _admin_id(service: IdentityService) -> str:
    return service.users.get_user_by_name("admin", "default").id


def _events(service: IdentityService) -> int:
    return len(service.revocations.events())


def test_the_same_password_again_changes_nothing(service: IdentityService) -> None:
    before = _events(service)

    bootstrap.bootstrap(service, admin_password="secret", catalog=[])

    assert _events(service) == before
    service.users.authenticate(_admin_id(service), "secret")


def test_a_new_password_replaces_the_old_and_revokes(service: IdentityService) -> None:
    before = _events(service)

    bootstrap.bootstrap(service, admin_password="fresh", catalog=[])

    assert _events(service) > before
    service.users.authenticate(_admin_id(service), "fresh")
    with pytest.raises(exception.AuthenticationFailed):
        service.users.authenticate(_admin_id(service), "secret")


def test_a_disabled_admin_is_enabled_again(service: IdentityService) -> None:
    service.users.update_user(INTERNAL, _admin_id(service), {"enabled": False})

    bootstrap.bootstrap(service, admin_password="secret", catalog=[])

    assert service.users.get_user(INTERNAL, _admin_id(service)).enabled
