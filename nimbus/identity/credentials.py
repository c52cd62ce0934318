"""Credentials: secrets users keep with the identity service, encrypted at rest.

A credential belongs to a user and, optionally, a project; its ``blob`` is
an opaque string, except for type ``ec2``, whose blob is a JSON object with
at least an ``access`` key and whose id is the sha256 of that key (so that
an EC2 signature names its credential).  Blobs are stored encrypted with
the credential keys, a Fernet key repository of their own (Keystone's
``[credential] key_repository``), beside the hash of the key that encrypted
them.

The policy rules look at the credential itself (its owner is
``target.credential.user_id``), so this manager reads the row before it
checks a rule, and a listing keeps only what the caller may read, as
Keystone's does.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Mapping
from typing import Any, Protocol

from cryptography.fernet import InvalidToken, MultiFernet
from oslo_config import cfg
from sqlalchemy import orm

from nimbus import exception
from nimbus.conf import state_path
from nimbus.context import RequestContext
from nimbus.db import Database
from nimbus.db.repository import Page, Repository
from nimbus.identity import models
from nimbus.identity.common import Manager, new_id
from nimbus.identity.token.keys import KeyRepository
from nimbus.policy import Enforcer

__all__ = [
    "EC2",
    "CredentialEncryptionError",
    "CredentialKeys",
    "CredentialManager",
    "key_repository",
]

#: The credential type whose blob is an EC2 key pair.
EC2 = "ec2"
#: Keys of an EC2 blob that tie it to how it was made; an update keeps them.
_BOUND_KEYS = ("trust_id", "app_cred_id", "access_token_id", "access_id")
#: Keys kept by a rotation (Keystone's fixed number for credential keys).
MAX_ACTIVE_KEYS = 3
_SETUP_HINT = "run 'nimbus credential setup' to create the keys"
#: Attributes stored in columns; any other attribute goes to ``extra``.
_COLUMNS = ("user_id", "project_id", "type")
#: Rows read per query while filling a page of what the caller may see.
_BATCH = 100


class CredentialEncryptionError(exception.NimbusException):
    """A blob could not be encrypted or decrypted with the credential keys."""

    msg_fmt = "Credential could not be decrypted. Please contact the administrator"


class CredentialKeys(Protocol):
    """What the manager needs from the credential keys."""

    def crypter(self) -> MultiFernet:
        """Return the keys, the one to encrypt with first."""
        ...  # pragma: no cover

    def primary_key_hash(self) -> str:
        """Return a hash naming the key that encrypts."""
        ...  # pragma: no cover


def key_repository(conf: cfg.ConfigOpts) -> KeyRepository:
    """Return the credential key repository, ``<state_path>/credential-keys`` by default."""
    configured = conf.credential.key_repository
    path = os.path.expanduser(configured) if configured else state_path(conf, "credential-keys")
    return KeyRepository(path, MAX_ACTIVE_KEYS, setup_hint=_SETUP_HINT)


def _ec2_blob(blob: Any) -> dict[str, Any]:
    """Return an EC2 blob parsed. :raises ValidationError: not an object with ``access``."""
    try:
        parsed = json.loads(blob)
    except (TypeError, ValueError):
        raise exception.ValidationError("Invalid blob in credential") from None
    if not parsed or not isinstance(parsed, dict):
        raise exception.ValidationError(field="credential/blob", reason="must be a JSON object")
    if parsed.get("access") is None:
        raise exception.ValidationError(
            field="credential/blob", reason="an ec2 blob needs an 'access' key"
        )
    try:
        # JSON escapes may spell a lone surrogate, which has no bytes to hash.
        str(parsed["access"]).encode("utf-8")
    except UnicodeEncodeError:
        raise exception.ValidationError("Invalid blob in credential") from None
    return parsed


def _is_ec2(kind: Any) -> bool:
    return isinstance(kind, str) and kind.lower() == EC2


def _target(values: Mapping[str, Any]) -> dict[str, Any]:
    """Return the policy target of a credential (``target.credential.user_id`` ...)."""
    return {
        f"target.credential.{name}": values.get(name) for name in ("id", "user_id", "project_id")
    }


def _row_values(row: models.Credential) -> dict[str, Any]:
    return {"id": row.id, "user_id": row.user_id, "project_id": row.project_id, "type": row.type}


@dataclasses.dataclass(eq=False)
class CredentialManager(Manager):
    """Create, read, update and delete credentials.

    :param database: nimbus's database.
    :param enforcer: checks the ``identity:*_credential(s)`` rules.
    :param keys: the credential keys (:func:`key_repository`).
    """

    database: Database
    enforcer: Enforcer
    keys: CredentialKeys

    def __post_init__(self) -> None:
        self.credentials = Repository(self.database, models.Credential, kind="credential")

    # -- encryption ---------------------------------------------------------

    def _encrypt(self, blob: str) -> tuple[str, str]:
        crypter = self.keys.crypter()
        return crypter.encrypt(blob.encode("utf-8")).decode("ascii"), self.keys.primary_key_hash()

    def _decrypt(self, row: models.Credential) -> str:
        try:
            return self.keys.crypter().decrypt(row.encrypted_blob.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError) as ex:
            raise CredentialEncryptionError() from ex

    def _render(self, row: models.Credential, blob: str | None = None) -> dict[str, Any]:
        return {
            **(row.extra or {}),
            **_row_values(row),
            "blob": self._decrypt(row) if blob is None else blob,
        }

    def _visible(self, ctx: RequestContext, rule: str, credential_id: str) -> models.Credential:
        """Return a credential after checking *rule* on it.

        A missing credential is checked with an empty target first: who may
        not act on other users' credentials learns nothing (403, not 404).
        """
        row = self.credentials.find(id=credential_id)
        target = _target(_row_values(row)) if row is not None else {}
        self.authorize(ctx, f"identity:{rule}_credential", target)
        if row is None:
            raise exception.NotFound(kind="credential", id=credential_id)
        return row

    # -- reading ------------------------------------------------------------

    def get_credential(self, ctx: RequestContext, credential_id: str) -> dict[str, Any]:
        """Return a credential with its blob decrypted. :raises NotFound: unknown id."""
        return self._render(self._visible(ctx, "get", credential_id))

    def list_credentials(
        self,
        ctx: RequestContext,
        *,
        user_id: str | None = None,
        type: str | None = None,
        page: Page = Page(),
    ) -> list[dict[str, Any]]:
        """Return the credentials the caller may read that match the filters, by id.

        A user without the right to read every credential sees only its own:
        each one is checked with ``identity:get_credential``, and a page is
        filled from further rows when some are left out.
        """
        owner = None if ctx.system_scope else ctx.user_id
        self.authorize(ctx, "identity:list_credentials", _target({"user_id": owner}))
        found: list[dict[str, Any]] = []
        marker = page.marker
        while page.limit is None or len(found) < page.limit:
            rows = self.credentials.list(
                filters={"user_id": user_id, "type": type}, page=Page(_BATCH, marker)
            )
            for row in rows:
                if self.enforcer.check(ctx, "identity:get_credential", _target(_row_values(row))):
                    found.append(self._render(row))
            if len(rows) < _BATCH:
                break
            marker = rows[-1].id
        return found[: page.limit] if page.limit is not None else found

    # -- writing ------------------------------------------------------------

    def create_credential(
        self,
        ctx: RequestContext,
        *,
        user_id: str,
        type: str,
        blob: str,
        project_id: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Store a credential; an ``ec2`` one gets the sha256 of its access key as id.

        :raises ValidationError: an ``ec2`` blob is not a JSON object with ``access``.
        :raises Conflict: an ``ec2`` credential with that access key exists.
        """
        values = {"user_id": user_id, "project_id": project_id, "type": type}
        self.authorize(ctx, "identity:create_credential", _target(values))
        if _is_ec2(type):
            access = str(_ec2_blob(blob)["access"])
            credential_id = hashlib.sha256(access.encode("utf-8")).hexdigest()
        else:
            credential_id = new_id()
        encrypted, key_hash = self._encrypt(blob)
        row = self.credentials.create(
            {
                **values,
                "id": credential_id,
                "encrypted_blob": encrypted,
                "key_hash": key_hash,
                "extra": dict(extra or {}),
            }
        )
        return self._render(row, blob)

    def update_credential(
        self, ctx: RequestContext, credential_id: str, changes: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Change a credential's blob, owner, project, type or extra attributes.

        The rule is checked on the credential as it is, then as it would
        be: an owner cannot give a credential to somebody else.

        :raises ValidationError: a new ``ec2`` blob is invalid or changes what
            ties the credential to its delegation (``trust_id`` ...), or the
            type becomes ``ec2`` while neither the changes nor the
            credential name a project.
        :raises NotFound: unknown id.
        """
        row = self._visible(ctx, "update", credential_id)
        current = _row_values(row)
        changes = {k: v for k, v in changes.items() if k != "id"}
        if _is_ec2(row.type) and "blob" in changes:
            new_blob = _ec2_blob(changes["blob"])
            try:
                old_blob = json.loads(self._decrypt(row))
            except ValueError:
                old_blob = {}
            for key in _BOUND_KEYS:
                if (old_blob or {}).get(key) != new_blob.get(key):
                    raise exception.ValidationError(f"{key} can not be updated for credential")
        after = {**current, **{k: v for k, v in changes.items() if k in _COLUMNS}}
        self.authorize(ctx, "identity:update_credential", _target(after))
        # Keystone's rule, as clients rely on it: a change to type ec2 needs a
        # project in the body or already on the credential.
        if _is_ec2(changes.get("type")) and not changes.get("project_id") and not row.project_id:
            raise exception.ValidationError(
                field="credential/project_id", reason="an ec2 credential needs a project"
            )
        blob = changes.get("blob")
        columns: dict[str, Any] = {k: v for k, v in changes.items() if k in _COLUMNS}
        if blob is not None:
            columns["encrypted_blob"], columns["key_hash"] = self._encrypt(blob)
        extra = {k: v for k, v in changes.items() if k not in (*_COLUMNS, "blob")}

        def _update(session: orm.Session) -> models.Credential:
            stored = self.credentials.get(credential_id, session=session)
            for name, value in columns.items():
                setattr(stored, name, value)
            if extra:
                stored.extra = {**(stored.extra or {}), **extra}
            session.flush()
            return stored

        return self._render(self.credentials.write(_update), blob)

    def delete_credential(self, ctx: RequestContext, credential_id: str) -> None:
        """Delete a credential. :raises NotFound: unknown id."""
        self._visible(ctx, "delete", credential_id)
        self.credentials.delete(credential_id)

    def delete_for_user(self, user_id: str) -> None:
        """Delete the credentials of a deleted user (no policy check)."""
        self.credentials.delete_where(models.Credential.user_id == user_id)

    def delete_for_project(self, session: orm.Session, project_id: str) -> None:
        """Delete the credentials scoped to a project being deleted, in its transaction."""
        self.credentials.delete_where(models.Credential.project_id == project_id, session=session)
