"""The identity service: every identity manager composed on one database."""

from __future__ import annotations

from typing import Any

from oslo_config import cfg
from sqlalchemy import orm

from nimbus import exception, registry
from nimbus.common.changes import Changes
from nimbus.db import Database
from nimbus.drivers.identity import IdentityDriver
from nimbus.identity.assignment import AssignmentManager
from nimbus.identity.auth import AuthManager
from nimbus.identity.catalog import CatalogManager
from nimbus.identity.common import INTERNAL
from nimbus.identity.credentials import CredentialKeys, CredentialManager, key_repository
from nimbus.identity.resource import ResourceManager
from nimbus.identity.token.formatter import TokenFormatter
from nimbus.identity.token.keys import KeyRepository
from nimbus.identity.token.revoke import RevocationList
from nimbus.identity.users import UserManager
from nimbus.policy import Enforcer

__all__ = ["IdentityService"]


class IdentityService:
    """Users, projects, roles, the catalog and tokens, ready for the API.

    The managers are the identity service's logic and policy layer: each
    method a caller reaches takes the caller's context first and checks
    its ``identity:*`` rule; nimbus's own code passes
    :data:`~nimbus.policy.INTERNAL`.

    :param conf: the nimbus config.
    :param database: nimbus's database (schema already upgraded).
    :param driver: an identity back-end; by default the one named by
        ``[identity] driver``, loaded from ``nimbus.identity.backends``.
    :param keys: the Fernet key repository; by default the configured one.
    :param credential_keys: the keys that encrypt credentials; by default
        ``[credential] key_repository``.
    :param enforcer: checks policy rules; by default one on *conf*'s rules.
    :param changes: change stamps shared with the other workers of the
        server, so that what one revokes or changes is seen by all at once.
    """

    def __init__(
        self,
        conf: cfg.ConfigOpts,
        database: Database,
        *,
        driver: IdentityDriver | None = None,
        keys: KeyRepository | None = None,
        credential_keys: CredentialKeys | None = None,
        enforcer: Enforcer | None = None,
        changes: Changes | None = None,
    ) -> None:
        self.conf = conf
        self.db = database
        self.enforcer = enforcer or Enforcer(conf)
        self.driver = driver or registry.load_driver(
            "nimbus.identity.backends",
            conf.identity.driver,
            conf,
            database=database,
            expected=IdentityDriver,
        )
        self.keys = keys or KeyRepository.from_conf(conf)
        self.revocations = RevocationList.from_conf(conf, database, changes=changes)
        self.catalog = CatalogManager(database, self.enforcer, changes=changes)
        self.credentials = CredentialManager(
            database, self.enforcer, credential_keys or key_repository(conf)
        )
        self.resources = ResourceManager(
            conf,
            database,
            self.enforcer,
            self._revoke,
            on_delete_target=self._delete_target,
            delete_actors=lambda domain_id: self.users.delete_domain_actors(domain_id),
        )
        self.users = UserManager(
            conf,
            self.driver,
            self.enforcer,
            self._revoke,
            check_domain=self._check_domain,
            check_project=self._check_project,
            delete_actor=self._delete_actor,
            forget_tokens=self._forget_tokens,
        )
        self.assignments = AssignmentManager(
            database,
            self.enforcer,
            self._revoke,
            resources=self.resources,
            users=self.users,
            forget_tokens=self._forget_tokens,
        )
        # Tokens stand on everything above: the collaborators go by their names here.
        shared = ("users", "resources", "assignments", "catalog", "revocations", "enforcer")
        self.auth = AuthManager(
            conf,
            formatter=TokenFormatter(self.keys),
            changes=changes,
            **{name: getattr(self, name) for name in shared},
        )

    def _delete_target(self, session: orm.Session, target_id: str) -> None:
        # What stands on a deleted project or domain goes in the same transaction.
        self.assignments.delete_target(session, target_id)
        self.credentials.delete_for_project(session, target_id)

    def _delete_actor(self, actor_id: str) -> None:
        # Users own credentials; a group id matches none.
        self.assignments.delete_actor(actor_id)
        self.credentials.delete_for_user(actor_id)

    def _revoke(self, **attrs: Any) -> None:
        self.revocations.revoke(**attrs)

    def _forget_tokens(self) -> None:
        # Cached validations hold the roles a token had; a change to roles,
        # implications, grants or memberships must be seen at once.
        self.auth.forget_cached()

    def _check_reference(self, field: str, kind: str, get: Any, item_id: str) -> None:
        try:
            get(INTERNAL, item_id)
        except exception.NotFound as ex:
            raise exception.ValidationError(
                field=field, reason=f"{kind} {item_id} does not exist"
            ) from ex

    def _check_domain(self, domain_id: str) -> None:
        # Keystone answers a user or group in an unknown domain with 404.
        self.resources.domains.get(INTERNAL, domain_id)

    def _check_project(self, project_id: str) -> None:
        self._check_reference(
            "default_project_id", "project", self.resources.projects.get, project_id
        )

    def context_for_token(self, token: str) -> Any:
        """Validate a token for the auth middleware."""
        return self.auth.context_for_token(token)
