"""bcrypt hashing in :mod:`nimbus.common.passwords` (the drivers' one way to store passwords).

This module belongs in ``tests/unit/common/``; it sits here until that
directory exists.
"""

from __future__ import annotations

import logging

import pytest

from nimbus.common import passwords


def test_hash_and_check() -> None:
    hashed = passwords.hash_password("s3cret", 4)
    assert hashed.startswith("$2b$04$")
    assert len(hashed) == 60
    assert passwords.check_password("s3cret", hashed)
    assert not passwords.check_password("S3cret", hashed)
    assert not passwords.check_password("", hashed)


def test_hashes_are_salted() -> None:
    assert passwords.hash_password("same", 4) != passwords.hash_password("same", 4)


def test_cost_is_the_configured_one() -> None:
    assert passwords.hash_password("x", 5).startswith("$2b$05$")


@pytest.mark.parametrize("hashed", [None, "", "garbage", "$2b$04$short", "$2b$04$" + "é" * 53])
def test_a_bad_hash_is_a_mismatch(hashed: str | None) -> None:
    assert passwords.check_password("anything", hashed) is False


def test_long_passwords_are_truncated_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    secret = "ü" * 40  # 80 bytes in UTF-8
    with caplog.at_level(logging.WARNING, logger="nimbus.common.passwords"):
        hashed = passwords.hash_password(secret, 4)
    assert "truncated to 72 bytes" in caplog.text
    assert secret[:10] not in caplog.text
    assert passwords.check_password(secret, hashed)
    # bcrypt only sees the first 72 bytes.
    assert passwords.check_password("ü" * 36 + "anything after", hashed)
    assert not passwords.check_password("ü" * 35, hashed)


def test_nothing_logs_a_password(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        hashed = passwords.hash_password("hunter2", 4)
        passwords.check_password("hunter2", hashed)
        passwords.check_password("hunter3", "garbage")
        passwords.verify_password("hunter4", None, rounds=4)
    assert "hunter" not in caplog.text


def test_verify_password_without_a_hash_spends_a_check(monkeypatch: pytest.MonkeyPatch) -> None:
    checked = []
    real = passwords.check_password

    def spy(password: str, hashed: str | None) -> bool:
        checked.append(hashed)
        return real(password, hashed)

    monkeypatch.setattr(passwords, "check_password", spy)
    assert passwords.verify_password("x", None, rounds=4) is False
    assert len(checked) == 1 and checked[0].startswith("$2b$04$")
    hashed = passwords.hash_password("x", 4)
    assert passwords.verify_password("x", hashed, rounds=4) is True
