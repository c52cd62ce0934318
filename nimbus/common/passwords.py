"""Password hashing with bcrypt.

bcrypt reads at most 72 bytes of a password and bcrypt 5 refuses longer
input, so longer passwords are cut to their first 72 UTF-8 bytes, both
when hashed and when checked (as Keystone does).  Nothing here ever logs
a password or a hash.
"""

from __future__ import annotations

import functools
import logging
import secrets

import bcrypt

from nimbus import exception

__all__ = [
    "BCRYPT_MAX_BYTES",
    "check_password",
    "hash_new_password",
    "hash_password",
    "verify_password",
]

LOG = logging.getLogger(__name__)

#: bcrypt ignores (or, from bcrypt 5 on, rejects) anything past this many bytes.
BCRYPT_MAX_BYTES = 72


def _encode(password: str, *, warn: bool) -> bytes:
    data = password.encode("utf-8")
    if len(data) > BCRYPT_MAX_BYTES:
        if warn:
            LOG.warning(
                "A password of %d bytes was truncated to %d bytes: bcrypt uses no more",
                len(data),
                BCRYPT_MAX_BYTES,
            )
        data = data[:BCRYPT_MAX_BYTES]
    return data


def hash_password(password: str, rounds: int) -> str:
    """Return the bcrypt hash of *password* with cost factor *rounds*.

    :param password: the clear-text password.
    :param rounds: the bcrypt cost (``[identity] password_hash_rounds``).
    :returns: a ``$2b$...`` string, 60 ASCII characters.
    """
    salt = bcrypt.gensalt(rounds=rounds)
    return bcrypt.hashpw(_encode(password, warn=True), salt).decode("ascii")


def hash_new_password(password: str, *, rounds: int, max_length: int) -> str:
    """Check a password a user chose against the length limit, then hash it.

    :param max_length: ``[identity] max_password_length``, in characters.
    :raises ValidationError: the password is longer than *max_length*.
    """
    if len(password) > max_length:
        raise exception.ValidationError(
            field="password", reason=f"longer than {max_length} characters"
        )
    return hash_password(password, rounds)


def check_password(password: str, hashed: str | None) -> bool:
    """Tell whether *password* matches the bcrypt hash *hashed*.

    The comparison is constant-time.  A missing or malformed hash is a
    mismatch, never an error.
    """
    if not isinstance(password, str) or not isinstance(hashed, str) or not hashed:
        return False
    try:
        return bcrypt.checkpw(_encode(password, warn=False), hashed.encode("ascii"))
    except (ValueError, TypeError, UnicodeEncodeError):
        return False


@functools.lru_cache(maxsize=8)
def _dummy_hash(rounds: int) -> str:
    # A hash of a random secret that nobody knows: checking against it costs
    # as much as a real check and never succeeds.
    return hash_password(secrets.token_urlsafe(32), rounds)


def verify_password(password: str, hashed: str | None, *, rounds: int) -> bool:
    """Check *password* like :func:`check_password`, in about the same time either way.

    When there is no hash to check against (an unknown user, or a user
    without a password) a dummy hash of cost *rounds* is checked instead,
    so that the time taken does not tell whether the user exists.
    """
    if hashed:
        return check_password(password, hashed)
    check_password(password, _dummy_hash(rounds))
    return False
