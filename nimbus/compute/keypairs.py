"""Key pairs: a user's SSH public keys, by name, to put into the servers they boot.

A key pair belongs to a user (not a project): names are unique per user,
and only that user and cloud admins see it.  A key pair is created from a
public key the caller gives, or made here: the private half is then
returned once, in the answer to the create, and never stored.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import string
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from oslo_config import cfg
from sqlalchemy import exc, orm

from nimbus import exception
from nimbus.compute.models import KeyPair
from nimbus.context import RequestContext
from nimbus.db import Database
from nimbus.policy import Enforcer

__all__ = ["KeypairService", "fingerprint", "valid_name"]

_RULE = "os_compute_api:os-keypairs"
#: The characters a key pair's name may have (Nova's before microversion 2.92).
_NAME_CHARS = frozenset(string.ascii_letters + string.digits + "_- ")
#: The longest public key accepted (a 16384-bit RSA key is about 2,800 characters).
_MAX_PUBLIC_KEY = 16384


def valid_name(name: str) -> bool:
    """Tell whether *name* may name a key pair: 1-255 safe characters, not only blanks."""
    return 0 < len(name) <= 255 and bool(name.strip()) and set(name) <= _NAME_CHARS


def fingerprint(public_key: str) -> str:
    """Return the MD5 fingerprint of an OpenSSH public key (``aa:bb:...``), as Nova does.

    :raises ValidationError: the key is not an OpenSSH public key.
    """
    parts = public_key.split()
    try:
        if len(parts) < 2:
            raise ValueError("not 'type base64 [comment]'")
        blob = base64.b64decode(parts[1], validate=True)
        serialization.load_ssh_public_key(" ".join(parts[:2]).encode("ascii"))
    except (ValueError, binascii.Error, UnicodeEncodeError) as ex:
        raise exception.BadRequest(reason=f"Keypair data is invalid: {ex}") from ex
    digest = hashlib.md5(blob, usedforsecurity=False).hexdigest()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def _generate() -> tuple[str, str]:
    """Return a new RSA key pair: (private key PEM, OpenSSH public key)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode("ascii")
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    return private, public.decode("ascii") + " Generated-by-Nimbus"


def render(row: KeyPair) -> dict[str, Any]:
    """Return a key pair as the service hands it out."""
    return {
        "id": row.id,
        "name": row.name,
        "user_id": row.user_id,
        "fingerprint": row.fingerprint,
        "public_key": row.public_key,
        "type": row.type,
        "created_at": row.created_at,
    }


class KeypairService:
    """Create, list, show and delete users' key pairs, within the ``key_pairs`` quota.

    :param conf: the nimbus config (``[quota] key_pairs`` is the default limit).
    :param database: where key pairs are kept.
    :param enforcer: the policy.
    :param limit: returns the key pair limit of a project (the quota
        service's); by default ``[quota] key_pairs``.
    :param generate: makes a key pair (private PEM, OpenSSH public key);
        injected by tests.
    """

    def __init__(
        self,
        conf: cfg.ConfigOpts,
        database: Database,
        enforcer: Enforcer,
        *,
        limit: Callable[[str | None], int] | None = None,
        generate: Callable[[], tuple[str, str]] = _generate,
    ) -> None:
        self.conf = conf
        self.db = database
        self.enforcer = enforcer
        self._limit = limit or (lambda project_id: int(conf.quota.key_pairs))
        self._generate = generate

    def _authorize(self, ctx: RequestContext, verb: str, user_id: str | None) -> None:
        self.enforcer.authorize(ctx, f"{_RULE}:{verb}", {"user_id": user_id})

    def count(self, user_id: str, session: orm.Session | None = None) -> int:
        """Return how many key pairs *user_id* has."""
        statement = (
            sa.select(sa.func.count()).select_from(KeyPair).where(KeyPair.user_id == user_id)
        )
        if session is not None:
            return int(session.scalar(statement) or 0)
        with self.db.reader() as reader:
            return int(reader.scalar(statement) or 0)

    def create(
        self,
        ctx: RequestContext,
        name: str,
        *,
        public_key: str | None = None,
        key_type: str = "ssh",
        user_id: str | None = None,
    ) -> dict[str, Any]:
        """Create a key pair; with no *public_key*, make one and return its private key too.

        :param user_id: whose key pair it is (cloud admins may name another
            user); the caller's by default.
        :raises ValidationError: a bad name or public key.
        :raises Conflict: the user has a key pair of that name.
        :raises QuotaExceeded: the user has as many key pairs as the quota allows.
        """
        owner = user_id or ctx.user_id or ""
        self._authorize(ctx, "create", owner)
        if not valid_name(name):
            raise exception.BadRequest(
                reason="Keypair name contains unsafe characters or is not 1 to 255 characters long."
            )
        private_key = None
        if public_key is None:
            private_key, public_key = self._generate()
        elif not public_key.strip() or len(public_key) > _MAX_PUBLIC_KEY:
            raise exception.BadRequest(
                reason="Keypair data is invalid: the public key is empty or too long."
            )
        print_ = fingerprint(public_key)
        limit = self._limit(ctx.project_id)
        if limit >= 0 and self.count(owner) >= limit:
            raise exception.ComputeQuotaExceeded(reason="Quota exceeded, too many key pairs.")

        def _create(session: orm.Session) -> dict[str, Any]:
            taken = session.scalar(
                sa.select(KeyPair.id).where(KeyPair.user_id == owner, KeyPair.name == name)
            )
            if taken is not None:
                raise exception.Conflict(f"Key pair '{name}' already exists.")
            row = KeyPair(
                name=name, user_id=owner, fingerprint=print_, public_key=public_key, type=key_type
            )
            session.add(row)
            session.flush()
            return render(row)

        try:
            created = self.db.write(_create)
        except exc.IntegrityError as ex:
            raise exception.Conflict(f"Key pair '{name}' already exists.") from ex
        # Two creates at once may both have passed the count: the later
        # count sees both, and a create that went over takes itself back.
        if limit >= 0 and self.count(owner) > limit:
            self._remove(owner, name)
            raise exception.ComputeQuotaExceeded(reason="Quota exceeded, too many key pairs.")
        if private_key is not None:
            created["private_key"] = private_key
        return created

    def list(
        self,
        ctx: RequestContext,
        *,
        user_id: str | None = None,
        limit: int | None = None,
        marker: str | None = None,
    ) -> list[dict[str, Any]]:
        """Return a user's key pairs by name (the caller's by default).

        :param marker: the name of the last key pair of the previous page.
        :raises NotFound: the marker names no key pair of the user.
        """
        owner = user_id or ctx.user_id or ""
        self._authorize(ctx, "index", owner)
        statement = sa.select(KeyPair).where(KeyPair.user_id == owner)
        with self.db.reader() as session:
            if marker is not None:
                if session.scalar(statement.where(KeyPair.name == marker)) is None:
                    raise exception.NotFound(f"Marker {marker} could not be found.")
                statement = statement.where(KeyPair.name > marker)
            statement = statement.order_by(KeyPair.name)
            if limit is not None:
                statement = statement.limit(limit)
            return [render(row) for row in session.scalars(statement)]

    def get(self, ctx: RequestContext, name: str, *, user_id: str | None = None) -> dict[str, Any]:
        """Return one key pair. :raises KeypairNotFound: the user has none of that name."""
        owner = user_id or ctx.user_id or ""
        self._authorize(ctx, "show", owner)
        with self.db.reader() as session:
            row = session.scalars(
                sa.select(KeyPair).where(KeyPair.user_id == owner, KeyPair.name == name)
            ).one_or_none()
            if row is None:
                raise exception.KeypairNotFound(name=name, user_id=owner)
            return render(row)

    def delete(self, ctx: RequestContext, name: str, *, user_id: str | None = None) -> None:
        """Delete one key pair. :raises KeypairNotFound: the user has none of that name."""
        owner = user_id or ctx.user_id or ""
        self._authorize(ctx, "delete", owner)
        if not self._remove(owner, name):
            raise exception.KeypairNotFound(name=name, user_id=owner)

    def _remove(self, owner: str, name: str) -> bool:
        def _delete(session: orm.Session) -> int:
            result = session.execute(
                sa.delete(KeyPair).where(KeyPair.user_id == owner, KeyPair.name == name)
            )
            return int(getattr(result, "rowcount", 0) or 0)

        return self.db.write(_delete) > 0
