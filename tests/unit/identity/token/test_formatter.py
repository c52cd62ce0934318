"""Tests of the Fernet token format: round trips, size, tampering, fuzzing."""

from __future__ import annotations

import base64
import datetime
import logging
import re
import uuid

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nimbus import exception
from nimbus.identity.token.formatter import (
    MAX_TOKEN_SIZE,
    METHODS,
    TokenFormatter,
    TokenPayload,
    is_expired,
    isotime,
    new_audit_id,
)
from nimbus.identity.token.keys import KeyRepository

UTC = datetime.UTC
ISSUED = datetime.datetime(2026, 11, 21, 20, 0, 0, 123456, tzinfo=UTC)
EXPIRES = datetime.datetime(2026, 11, 21, 21, 0, 0, 654321, tzinfo=UTC)
FUZZ = settings(
    max_examples=300,
    database=None,
    deadline=None,
)


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> KeyRepository:
    repository = KeyRepository(str(tmp_path_factory.mktemp("token") / "keys"))
    repository.initialize()
    return repository


@pytest.fixture(scope="module")
def formatter(keys: KeyRepository) -> TokenFormatter:
    return TokenFormatter(keys)


def _payload(**overrides) -> TokenPayload:
    fields = dict(
        user_id=uuid.uuid4().hex,
        methods=("password",),
        issued_at=ISSUED,
        expires_at=EXPIRES,
        audit_ids=(new_audit_id(),),
    )
    fields.update(overrides)
    return TokenPayload(**fields)


def _encrypt_raw(keys: KeyRepository, fields: object) -> str:
    """Encrypt arbitrary msgpack data with the real primary key."""
    packed = msgpack.packb(fields, use_bin_type=True)
    return keys.crypter().encrypt(packed).rstrip(b"=").decode("ascii")


# -- round trips ---------------------------------------------------------------

SCOPES = {
    "unscoped": {},
    "project": {"project_id": uuid.uuid4().hex},
    "domain": {"domain_id": uuid.uuid4().hex},
    "domain default": {"domain_id": "default"},
    "system": {"system": "all"},
}


@pytest.mark.parametrize("scope", SCOPES.values(), ids=SCOPES.keys())
@pytest.mark.parametrize("chained", [False, True], ids=["own audit id", "chained"])
def test_round_trip_of_every_scope(formatter: TokenFormatter, scope: dict, chained: bool) -> None:
    audit_ids = (new_audit_id(), new_audit_id()) if chained else (new_audit_id(),)
    payload = _payload(audit_ids=audit_ids, methods=("password", "token"), **scope)

    decoded = formatter.decode(formatter.encode(payload))

    assert decoded == payload
    assert decoded.scope == payload.scope


@pytest.mark.parametrize(
    "user_id",
    [
        "cn=alice,ou=people,dc=example,dc=org",  # an LDAP id
        "8967B43FE1D34CD294F4972488709E6D",  # hex, but not in canonical form
        "f22278dc-e5d4-4448-95b0-9986fca9ab0e",  # with dashes
        "0" * 31,
        "u",
        "x" * 64,
    ],
)
def test_ids_that_are_not_canonical_uuid_hex_round_trip_as_strings(
    formatter: TokenFormatter, user_id: str
) -> None:
    payload = _payload(user_id=user_id, project_id=user_id)

    assert formatter.decode(formatter.encode(payload)) == payload


def test_audit_ids_that_are_not_base64_of_16_bytes_round_trip(formatter: TokenFormatter) -> None:
    payload = _payload(audit_ids=("not-an-audit-id", "x" * 32))

    assert formatter.decode(formatter.encode(payload)) == payload


def test_audit_id_with_non_canonical_spare_bits_round_trips(formatter: TokenFormatter) -> None:
    # "AB" ends in a character whose spare bits are set: it must not pack to
    # bytes that unpack to a different spelling.
    odd = "A" * 21 + "B"
    payload = _payload(audit_ids=(odd,))

    assert formatter.decode(formatter.encode(payload)).audit_ids == (odd,)


def test_times_keep_microseconds_and_come_back_in_utc(formatter: TokenFormatter) -> None:
    plus_two = datetime.timezone(datetime.timedelta(hours=2))
    issued = datetime.datetime(2026, 11, 21, 22, 0, 0, 1, tzinfo=plus_two)
    payload = _payload(issued_at=issued, expires_at=issued + datetime.timedelta(microseconds=1))

    decoded = formatter.decode(formatter.encode(payload))

    assert decoded.issued_at == issued
    assert decoded.issued_at.tzinfo == UTC
    assert decoded.issued_at.microsecond == 1
    assert decoded.expires_at.microsecond == 2
    assert isotime(decoded.issued_at) == "2026-11-21T20:00:00.000001Z"


def test_methods_travel_as_a_bitmask_in_canonical_order(formatter: TokenFormatter) -> None:
    payload = _payload(methods=("token", "password", "token"))

    assert payload.methods == ("password", "token")
    assert formatter.decode(formatter.encode(payload)).methods == ("password", "token")


def test_every_method_round_trips(formatter: TokenFormatter) -> None:
    payload = _payload(methods=METHODS)

    assert formatter.decode(formatter.encode(payload)).methods == METHODS


def test_bytes_token_is_accepted(formatter: TokenFormatter) -> None:
    payload = _payload()

    assert formatter.decode(formatter.encode(payload).encode("ascii")) == payload


# -- size and shape --------------------------------------------------------------


def test_token_is_url_safe_without_padding(formatter: TokenFormatter) -> None:
    token = formatter.encode(_payload(project_id=uuid.uuid4().hex))

    assert re.fullmatch(r"[A-Za-z0-9_-]+", token)


def test_project_scoped_token_is_short(formatter: TokenFormatter, caplog) -> None:
    payload = _payload(
        project_id=uuid.uuid4().hex,
        methods=("password", "token"),
        audit_ids=(new_audit_id(), new_audit_id()),
    )

    with caplog.at_level(logging.WARNING):
        token = formatter.encode(payload)

    assert len(token) <= 205
    assert len(formatter.encode(_payload(project_id=uuid.uuid4().hex))) <= 185
    assert caplog.text == ""


def test_long_tokens_are_logged_without_the_token(keys: KeyRepository, caplog) -> None:
    formatter = TokenFormatter(keys, max_token_size=50)

    with caplog.at_level(logging.WARNING):
        token = formatter.encode(_payload())

    assert "more than 50" in caplog.text
    assert token not in caplog.text
    assert MAX_TOKEN_SIZE == 255


# -- tampering and garbage --------------------------------------------------------


def _assert_rejected(formatter: TokenFormatter, token, *, secret: str | None = None) -> str:
    with pytest.raises(exception.TokenNotFound) as info:
        formatter.decode(token)
    assert type(info.value) is exception.TokenNotFound
    message = str(info.value)
    if secret:
        assert secret not in message
        assert secret[:16] not in message
    return message


def test_every_single_character_change_is_rejected(formatter: TokenFormatter) -> None:
    token = formatter.encode(_payload(project_id=uuid.uuid4().hex))

    for position, char in enumerate(token):
        replacement = "A" if char != "A" else "B"
        tampered = token[:position] + replacement + token[position + 1 :]
        _assert_rejected(formatter, tampered, secret=token)


@pytest.mark.parametrize("cut", [1, 2, 3, 4, 20, 100])
def test_truncated_token_is_rejected(formatter: TokenFormatter, cut: int) -> None:
    token = formatter.encode(_payload())

    _assert_rejected(formatter, token[:-cut], secret=token)


def test_extended_token_is_rejected(formatter: TokenFormatter) -> None:
    token = formatter.encode(_payload())

    _assert_rejected(formatter, token + "AAAA", secret=token)


def test_padded_token_is_rejected(formatter: TokenFormatter) -> None:
    token = formatter.encode(_payload())
    padded = base64.urlsafe_b64encode(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))

    message = _assert_rejected(formatter, padded.decode("ascii"), secret=token)

    assert "padding" in message


def test_standard_base64_alphabet_is_rejected(formatter: TokenFormatter) -> None:
    token = formatter.encode(_payload())

    _assert_rejected(formatter, token.replace("-", "+").replace("_", "/") + "+", secret=token)


def test_non_ascii_token_is_rejected(formatter: TokenFormatter) -> None:
    token = formatter.encode(_payload())

    assert "ASCII" in _assert_rejected(formatter, token[:-1] + "é", secret=token)
    assert "ASCII" in _assert_rejected(formatter, b"\xff" + token.encode(), secret=token)


def test_non_canonical_base64_spelling_is_rejected(formatter: TokenFormatter) -> None:
    token = formatter.encode(_payload())
    if len(token) % 4 == 0:  # pragma: no cover - a Fernet token never is
        pytest.skip("no spare bits")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(token[-1])
    # Set one spare (ignored) low bit of the last character.
    other = token[:-1] + alphabet[last | 1]
    assert base64.urlsafe_b64decode(other + "==") == base64.urlsafe_b64decode(token + "==")

    assert "canonical" in _assert_rejected(formatter, other, secret=token)


def test_token_from_unknown_key_is_rejected(tmp_path) -> None:
    mine = KeyRepository(str(tmp_path / "mine"))
    mine.initialize()
    theirs = KeyRepository(str(tmp_path / "theirs"))
    theirs.initialize()
    token = TokenFormatter(theirs).encode(_payload())

    message = _assert_rejected(TokenFormatter(mine), token, secret=token)

    assert "could not be decrypted" in message


@pytest.mark.parametrize(
    "fields",
    [
        [9, uuid.uuid4().bytes, 1, 0, 0, [b"\x00" * 16]],  # unknown version
        [-1, uuid.uuid4().bytes, 1, 0, 0, [b"\x00" * 16]],
        [True, uuid.uuid4().bytes, 1, 0, 0, [b"\x00" * 16]],  # a bool is not a version
        [0, uuid.uuid4().bytes, 1, 0, 0],  # a field missing
        [0, uuid.uuid4().bytes, 1, 0, 0, [b"\x00" * 16], 7],  # one too many
        [0, b"short", 1, 0, 0, [b"\x00" * 16]],  # packed id of the wrong size
        [0, uuid.uuid4().bytes, 0, 0, 0, [b"\x00" * 16]],  # no method
        [0, uuid.uuid4().bytes, 1 << 40, 0, 0, [b"\x00" * 16]],  # unknown method bit
        [0, uuid.uuid4().bytes, 1, 1.5, 0, [b"\x00" * 16]],  # float time
        [0, uuid.uuid4().bytes, 1, 2**62, 0, [b"\x00" * 16]],  # beyond year 9999
        [0, uuid.uuid4().bytes, 1, 0, 0, []],  # no audit id
        [0, uuid.uuid4().bytes, 1, 0, 0, [b"\x00" * 3]],
        [0, uuid.uuid4().bytes, 1, 0, 0, b"\x00" * 16],
        [2, uuid.uuid4().bytes, 1, None, 0, 0, [b"\x00" * 16]],  # project id missing
        [3, uuid.uuid4().bytes, 1, b"all", 0, 0, [b"\x00" * 16]],  # system as bytes
        [1, "", 1, "default", 0, 0, [b"\x00" * 16]],  # empty user id
        [0, msgpack.ExtType(1, b"abc"), 1, 0, 0, [b"\x00" * 16]],  # an extension type
        [0, "u", 1, msgpack.Timestamp(0), 0, [b"\x00" * 16]],  # msgpack's own time
        {"version": 0},
        {1: 2},  # a map with an integer key
        "just a string",
        [],
    ],
)
def test_authentic_but_malformed_payload_is_rejected(keys: KeyRepository, fields) -> None:
    token = _encrypt_raw(keys, fields)

    assert "malformed" in _assert_rejected(TokenFormatter(keys), token, secret=token)


def test_authentic_payload_with_trailing_data_is_rejected(keys: KeyRepository) -> None:
    packed = msgpack.packb([0, "u", 1, 0, 0, ["a"]]) + b"\x00"
    token = keys.crypter().encrypt(packed).rstrip(b"=").decode()

    _assert_rejected(TokenFormatter(keys), token, secret=token)


@pytest.mark.parametrize("garbage", ["", "A", "AAAAA", "a" * 5000, None, 42, ["x"], b""])
def test_garbage_is_rejected(formatter: TokenFormatter, garbage) -> None:
    _assert_rejected(formatter, garbage)


# -- fuzzing ----------------------------------------------------------------------


@FUZZ
@given(garbage=st.one_of(st.text(), st.binary(), st.text(alphabet="AZaz09-_=+/", min_size=1)))
def test_decode_of_anything_raises_only_token_not_found(formatter: TokenFormatter, garbage) -> None:
    with pytest.raises(exception.TokenNotFound):
        formatter.decode(garbage)


@FUZZ
@given(data=st.data())
def test_decode_of_a_mutated_token_raises_only_token_not_found(
    formatter: TokenFormatter, data
) -> None:
    token = formatter.encode(_payload(project_id=uuid.uuid4().hex))
    start = data.draw(st.integers(0, len(token) - 1))
    end = data.draw(st.integers(start, min(len(token), start + 8)))
    insert = data.draw(st.text(min_size=0, max_size=8))
    mutated = token[:start] + insert + token[end:]

    if mutated == token:
        assert formatter.decode(mutated).user_id
    else:
        with pytest.raises(exception.TokenNotFound):
            formatter.decode(mutated)


_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=True),
    st.text(max_size=70),
    st.binary(max_size=20),
    st.binary(min_size=16, max_size=16),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=12,
)


@FUZZ
@given(
    fields=st.one_of(
        _VALUES,
        st.tuples(st.integers(-1, 5), st.lists(_VALUES, max_size=8)).map(lambda t: [t[0], *t[1]]),
    )
)
def test_decode_of_any_authentic_payload_returns_a_payload_or_token_not_found(
    keys: KeyRepository, fields
) -> None:
    formatter = TokenFormatter(keys)
    token = _encrypt_raw(keys, fields)

    try:
        payload = formatter.decode(token)
    except exception.TokenNotFound:
        return
    assert isinstance(payload, TokenPayload)


@FUZZ
@given(
    user_id=st.one_of(st.uuids().map(lambda u: u.hex), st.text(min_size=1, max_size=64)),
    scope_id=st.one_of(
        st.none(), st.uuids().map(lambda u: u.hex), st.text(min_size=1, max_size=64)
    ),
    scope=st.sampled_from(["project_id", "domain_id", "system"]),
    methods=st.sets(st.sampled_from(METHODS), min_size=1),
    issued=st.datetimes(timezones=st.just(UTC)),
    lifetime=st.integers(0, 10**12),
    audit_ids=st.lists(
        st.one_of(st.builds(new_audit_id), st.text(min_size=1, max_size=32)), min_size=1, max_size=2
    ),
)
def test_any_valid_payload_round_trips(
    formatter: TokenFormatter, user_id, scope_id, scope, methods, issued, lifetime, audit_ids
) -> None:
    expires = min(
        issued + datetime.timedelta(microseconds=lifetime) if lifetime else issued,
        datetime.datetime.max.replace(tzinfo=UTC),
    )
    scope_fields = {} if scope_id is None else {scope: scope_id}
    payload = TokenPayload(
        user_id=user_id,
        methods=tuple(methods),
        issued_at=issued,
        expires_at=expires,
        audit_ids=tuple(audit_ids),
        **scope_fields,
    )

    assert formatter.decode(formatter.encode(payload)) == payload


# -- the payload ------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"project_id": "p", "domain_id": "d"}, "domain_id"),
        ({"domain_id": "d", "system": "all"}, "system"),
        ({"methods": ()}, "methods"),
        ({"methods": ("password", "magic")}, "methods"),
        ({"issued_at": datetime.datetime(2026, 1, 1)}, "issued_at"),
        ({"expires_at": "tomorrow"}, "expires_at"),
        ({"audit_ids": ()}, "audit_ids"),
        ({"audit_ids": ("a", "b", "c")}, "audit_ids"),
        ({"audit_ids": ("x" * 33,)}, "audit_ids"),
        ({"user_id": ""}, "user_id"),
        ({"user_id": "u" * 65}, "user_id"),
        ({"project_id": 12}, "project_id"),
    ],
)
def test_invalid_payload_is_refused(overrides: dict, field: str) -> None:
    with pytest.raises(exception.ValidationError) as info:
        _payload(**overrides)

    assert info.value.kwargs["field"] == field


def test_payload_properties() -> None:
    own, chain = new_audit_id(), new_audit_id()
    payload = _payload(audit_ids=[own, chain], methods=["password"])

    assert payload.audit_ids == (own, chain)
    assert payload.methods == ("password",)
    assert payload.audit_id == own
    assert payload.audit_chain_id == chain
    assert payload.scope == "unscoped"
    assert _payload(system="all").scope == "system"
    assert _payload(domain_id="default").scope == "domain"
    assert _payload(project_id="p").scope == "project"


def test_is_expired() -> None:
    payload = _payload()
    just_before = EXPIRES - datetime.timedelta(microseconds=1)

    assert not is_expired(payload, just_before)
    assert is_expired(payload, EXPIRES)
    assert not is_expired(payload, EXPIRES, allow_expired_window=60)
    assert not is_expired(payload, EXPIRES + datetime.timedelta(seconds=59), 60)
    assert is_expired(payload, EXPIRES + datetime.timedelta(seconds=60), 60)


def test_isotime_renders_as_keystone() -> None:
    assert isotime(datetime.datetime(2026, 11, 21, 21, 0, tzinfo=UTC)) == (
        "2026-11-21T21:00:00.000000Z"
    )


def test_new_audit_id_is_22_url_safe_characters_of_16_random_bytes() -> None:
    ids = {new_audit_id() for _ in range(200)}

    assert len(ids) == 200
    for audit_id in ids:
        assert re.fullmatch(r"[A-Za-z0-9_-]{22}", audit_id)
        assert len(base64.urlsafe_b64decode(audit_id + "==")) == 16
