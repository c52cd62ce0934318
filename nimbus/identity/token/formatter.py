"""Fernet tokens: what a token carries, and how it is packed and encrypted.

A token is stateless: nothing about it is stored on the server.  It carries
only who authenticated (``user_id``), how (``methods``), for what scope, when
it was issued and when it expires, and its audit ids.  Roles and the catalog
are recomputed at validation, so role changes apply at once and the token
stays short.

The payload is a msgpack array ``(version, user_id, methods[, scope],
issued_at, expires_at, audit_ids)`` where the version names the scope:

===  ===========  ============================
 0   unscoped     no scope field
 1   domain       ``domain_id``
 2   project      ``project_id``
 3   system       ``system`` (``"all"``)
===  ===========  ============================

Ids that are UUID hex strings travel as their 16 bytes, other ids (such as
the domain ``default``) as strings; audit ids travel as their 16 bytes;
methods as a bitmask over :data:`METHODS`; times as integer microseconds
since the epoch, so they survive a round trip exactly.  The array is
encrypted with the primary Fernet key and the base64 ``=`` padding is
stripped, so the token is URL-safe.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime
import logging
import os
import re
import uuid
from typing import Any

import msgpack
from cryptography.fernet import InvalidToken

from nimbus import exception
from nimbus.identity.token.keys import KeySource

__all__ = [
    "METHODS",
    "MAX_TOKEN_SIZE",
    "TokenFormatter",
    "TokenPayload",
    "is_expired",
    "isotime",
    "new_audit_id",
]

LOG = logging.getLogger(__name__)

#: Authentication methods a token can record, by bit position.  Append only:
#: the position of a method is part of every token issued.
METHODS: tuple[str, ...] = (
    "password",
    "token",
    "application_credential",
    "totp",
    "external",
    "mapped",
    "oauth1",
    "oauth2_credential",
    "x509",
    "kerberos",
    "openid",
    "saml2",
)
_METHOD_BITS = {name: 1 << index for index, name in enumerate(METHODS)}

#: Tokens longer than this draw a warning: some clients and proxies cut
#: header values there (Keystone's ``max_token_size``).
MAX_TOKEN_SIZE = 255
# Anything longer is rejected before decryption is attempted.  The longest
# payload (two 64-character ids that are not UUIDs, every method, two
# 32-character audit ids that are not base64) gives a 396-character token.
_MAX_ACCEPTED_SIZE = 2048
_MAX_ID_LENGTH = 64
_MAX_AUDIT_ID_LENGTH = 32

_UNSCOPED, _DOMAIN, _PROJECT, _SYSTEM = 0, 1, 2, 3
#: The scope attribute of each payload version (None: unscoped).
_SCOPE_FIELD: dict[int, str | None] = {
    _UNSCOPED: None,
    _DOMAIN: "domain_id",
    _PROJECT: "project_id",
    _SYSTEM: "system",
}
_VERSION_OF_SCOPE = {field: version for version, field in _SCOPE_FIELD.items()}

_TOKEN_CHARS = re.compile(r"[A-Za-z0-9_-]+")
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
_MICROSECOND = datetime.timedelta(microseconds=1)


def new_audit_id() -> str:
    """Return a new audit id: 16 random bytes as 22 URL-safe base64 characters."""
    return base64.urlsafe_b64encode(os.urandom(16)).rstrip(b"=").decode("ascii")


def isotime(when: datetime.datetime) -> str:
    """Render a time as the identity API does: ``2026-11-21T21:00:00.000000Z``.

    :param when: a timezone-aware time.
    :returns: the time in UTC with microseconds and a ``Z``.
    """
    return when.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclasses.dataclass(frozen=True)
class TokenPayload:
    """What a Fernet token says: who, how, for which scope, and until when.

    At most one of ``project_id``, ``domain_id`` and ``system`` is set; with
    none the token is unscoped.  ``system`` is ``"all"`` for a system-scoped
    token.  ``audit_ids`` holds the token's own audit id and, for a token
    obtained from another token, the audit id of the first token of the chain
    last.  Times are timezone-aware and kept in UTC with their microseconds.
    ``methods`` is kept in the order of :data:`METHODS` without repeats, the
    order in which a decoded token gives them back.

    :raises nimbus.exception.ValidationError: a field is missing, unknown or
        out of range.
    """

    user_id: str
    methods: tuple[str, ...]
    issued_at: datetime.datetime
    expires_at: datetime.datetime
    audit_ids: tuple[str, ...]
    project_id: str | None = None
    domain_id: str | None = None
    system: str | None = None

    def __post_init__(self) -> None:
        _check_id("user_id", self.user_id)
        methods = tuple(self.methods)
        unknown = sorted(m for m in methods if m not in _METHOD_BITS)
        if unknown:
            raise exception.ValidationError(
                field="methods", reason=f"unknown authentication method(s) {unknown}"
            )
        if not methods:
            raise exception.ValidationError(field="methods", reason="at least one is needed")
        object.__setattr__(self, "methods", tuple(m for m in METHODS if m in methods))
        for field in ("issued_at", "expires_at"):
            value = getattr(self, field)
            if not isinstance(value, datetime.datetime) or value.utcoffset() is None:
                raise exception.ValidationError(field=field, reason="a timezone-aware time needed")
            object.__setattr__(self, field, value.astimezone(datetime.UTC))
        audit_ids = tuple(self.audit_ids)
        if not 1 <= len(audit_ids) <= 2:
            raise exception.ValidationError(field="audit_ids", reason="one or two are needed")
        for audit_id in audit_ids:
            if not isinstance(audit_id, str) or not 0 < len(audit_id) <= _MAX_AUDIT_ID_LENGTH:
                raise exception.ValidationError(
                    field="audit_ids",
                    reason=f"each must be a string of 1 to {_MAX_AUDIT_ID_LENGTH} characters",
                )
        object.__setattr__(self, "audit_ids", audit_ids)
        scopes = [f for f in ("project_id", "domain_id", "system") if getattr(self, f) is not None]
        if len(scopes) > 1:
            raise exception.ValidationError(
                field=scopes[1], reason=f"a token has one scope, and {scopes[0]} is set"
            )
        for field in scopes:
            _check_id(field, getattr(self, field))

    @property
    def scope(self) -> str:
        """Return ``unscoped``, ``project``, ``domain`` or ``system``."""
        if self.project_id is not None:
            return "project"
        if self.domain_id is not None:
            return "domain"
        return "unscoped" if self.system is None else "system"

    @property
    def audit_id(self) -> str:
        """Return this token's own audit id."""
        return self.audit_ids[0]

    @property
    def audit_chain_id(self) -> str:
        """Return the audit id of the first token of the chain (this one's if none)."""
        return self.audit_ids[-1]


def is_expired(
    payload: TokenPayload, now: datetime.datetime, allow_expired_window: float = 0
) -> bool:
    """Tell whether a token is expired at *now*.

    A token is valid up to, but not at, its ``expires_at``.

    :param payload: the decoded token.
    :param now: the current time, timezone-aware.
    :param allow_expired_window: seconds after expiry during which the token
        is still accepted (``?allow_expired=1``).
    :returns: True when the token must be refused.
    """
    return now >= payload.expires_at + datetime.timedelta(seconds=allow_expired_window)


class TokenFormatter:
    """Turn token payloads into Fernet tokens and back.

    :param keys: the keys, primary first (a :class:`~.keys.KeyRepository`).
    :param max_token_size: tokens longer than this are logged as a warning.
    """

    def __init__(self, keys: KeySource, *, max_token_size: int = MAX_TOKEN_SIZE) -> None:
        self._keys = keys
        self._max_token_size = max_token_size

    def encode(self, payload: TokenPayload) -> str:
        """Return the token for *payload*, encrypted with the primary key.

        :param payload: what the token says.
        :returns: a URL-safe token without base64 padding.
        :raises nimbus.identity.token.keys.KeyRepositoryError: no keys.
        """
        scope_field = next(
            (f for f in ("project_id", "domain_id", "system") if getattr(payload, f) is not None),
            None,
        )
        version = _VERSION_OF_SCOPE[scope_field]
        fields: list[Any] = [version, _pack_id(payload.user_id), _pack_methods(payload.methods)]
        if scope_field == "system":
            fields.append(payload.system)
        elif scope_field is not None:
            fields.append(_pack_id(getattr(payload, scope_field)))
        fields += [
            _pack_time(payload.issued_at),
            _pack_time(payload.expires_at),
            [_pack_audit_id(a) for a in payload.audit_ids],
        ]
        packed = msgpack.packb(fields, use_bin_type=True)
        token = self._keys.crypter().encrypt(packed).rstrip(b"=").decode("ascii")
        if len(token) > self._max_token_size:
            LOG.warning(
                "A %s-scoped Fernet token is %d characters long, more than %d: "
                "some clients and proxies cut longer header values",
                payload.scope,
                len(token),
                self._max_token_size,
            )
        return token

    def decode(self, token: str | bytes) -> TokenPayload:
        """Decrypt and unpack a token.

        The expiry is not checked here (see :func:`is_expired`), nor is
        revocation.

        :param token: the token as received.
        :returns: what the token says.
        :raises nimbus.exception.TokenNotFound: for anything that is not a
            token issued with one of the current keys: whatever the input, no
            other exception comes out of here (the reason never quotes it).
        :raises nimbus.identity.token.keys.KeyRepositoryError: the keys cannot
            be loaded at all (a server problem, not the token's).
        """
        data = _unpad(token)
        crypter = self._keys.crypter()
        try:
            packed = crypter.decrypt(data)
        except (InvalidToken, ValueError, TypeError) as ex:
            raise exception.TokenNotFound(
                reason="it could not be decrypted: tampered, truncated, "
                "or issued with a key no longer in use"
            ) from ex
        try:
            return _unpack(packed)
        except (ValueError, TypeError, OverflowError, msgpack.UnpackException) as ex:
            # Authenticated data that does not parse: a bug or a foreign
            # issuer sharing our keys.  The reason stays generic on purpose.
            LOG.warning("A token decrypted but its payload is malformed: %s", type(ex).__name__)
            raise exception.TokenNotFound(reason="its payload is malformed") from ex


# -- packing -----------------------------------------------------------------


def _check_id(field: str, value: Any) -> None:
    if not isinstance(value, str) or not 0 < len(value) <= _MAX_ID_LENGTH:
        raise exception.ValidationError(
            field=field, reason=f"a string of 1 to {_MAX_ID_LENGTH} characters needed"
        )


def _pack_id(value: str) -> str | bytes:
    if len(value) == 32:
        try:
            as_uuid = uuid.UUID(hex=value)
        except ValueError:
            return value
        # Only the canonical form packs, so that unpacking gives it back.
        if as_uuid.hex == value:
            return as_uuid.bytes
    return value


def _unpack_id(value: Any) -> str:
    if isinstance(value, bytes):
        if len(value) != 16:
            raise ValueError("a packed id has 16 bytes")
        return uuid.UUID(bytes=value).hex
    if isinstance(value, str):
        return value
    raise TypeError("an id is bytes or a string")


def _pack_audit_id(value: str) -> str | bytes:
    if len(value) == 22:
        try:
            raw = base64.urlsafe_b64decode(value + "==")
        except (ValueError, binascii.Error):
            return value
        if len(raw) == 16 and _audit_text(raw) == value:
            return raw
    return value


def _audit_text(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unpack_audit_id(value: Any) -> str:
    if isinstance(value, bytes):
        if len(value) != 16:
            raise ValueError("a packed audit id has 16 bytes")
        return _audit_text(value)
    if isinstance(value, str):
        return value
    raise TypeError("an audit id is bytes or a string")


def _pack_methods(methods: tuple[str, ...]) -> int:
    bits = 0
    for method in methods:
        bits |= _METHOD_BITS[method]
    return bits


def _unpack_methods(bits: Any) -> tuple[str, ...]:
    if type(bits) is not int or bits <= 0 or bits >> len(METHODS):
        raise ValueError("methods bitmask out of range")
    return tuple(name for name in METHODS if bits & _METHOD_BITS[name])


def _pack_time(when: datetime.datetime) -> int:
    return (when - _EPOCH) // _MICROSECOND


def _unpack_time(value: Any) -> datetime.datetime:
    if type(value) is not int:
        raise TypeError("a time is an integer")
    return _EPOCH + datetime.timedelta(microseconds=value)


def _unpack(packed: bytes) -> TokenPayload:
    fields = msgpack.unpackb(packed, raw=False, use_list=False, strict_map_key=True)
    if not isinstance(fields, tuple) or not fields or type(fields[0]) is not int:
        raise ValueError("not a versioned array")
    version = fields[0]
    if version not in _SCOPE_FIELD:
        raise ValueError("unknown payload version")
    scope_field = _SCOPE_FIELD[version]
    expected = 6 if scope_field is None else 7
    if len(fields) != expected:
        raise ValueError("wrong number of fields")
    scope: dict[str, str] = {}
    rest = list(fields[3:])
    if scope_field == "system":
        if not isinstance(rest[0], str):
            raise TypeError("the system scope is a string")
        scope["system"] = rest.pop(0)
    elif scope_field is not None:
        scope[scope_field] = _unpack_id(rest.pop(0))
    issued_at, expires_at, audit_ids = rest
    if not isinstance(audit_ids, tuple):
        raise TypeError("audit ids are an array")
    try:
        return TokenPayload(
            user_id=_unpack_id(fields[1]),
            methods=_unpack_methods(fields[2]),
            issued_at=_unpack_time(issued_at),
            expires_at=_unpack_time(expires_at),
            audit_ids=tuple(_unpack_audit_id(a) for a in audit_ids),
            **scope,
        )
    except exception.ValidationError as ex:
        raise ValueError(f"invalid field {ex.kwargs.get('field')}") from ex


def _unpad(token: Any) -> bytes:
    """Check the token's characters and restore its base64 padding."""
    if isinstance(token, bytes):
        try:
            token = token.decode("ascii")
        except UnicodeDecodeError as ex:
            raise exception.TokenNotFound(reason="it is not ASCII") from ex
    if not isinstance(token, str):
        raise exception.TokenNotFound(reason="it is not a string")
    if not token.isascii():
        raise exception.TokenNotFound(reason="it is not ASCII")
    if len(token) > _MAX_ACCEPTED_SIZE:
        raise exception.TokenNotFound(reason="it is too long")
    if not _TOKEN_CHARS.fullmatch(token):
        raise exception.TokenNotFound(
            reason="it holds characters outside URL-safe base64 without padding"
        )
    remainder = len(token) % 4
    if remainder == 1:
        raise exception.TokenNotFound(reason="its length is not that of base64 text")
    padded = (token + "=" * (-len(token) % 4)).encode("ascii")
    # Base64 leaves spare bits in the last character; a token whose spare
    # bits are set decodes to the same bytes.  Accept one spelling only.
    if base64.urlsafe_b64encode(base64.urlsafe_b64decode(padded)) != padded:
        raise exception.TokenNotFound(reason="it is not in canonical base64")
    return padded
