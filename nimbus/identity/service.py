"""The identity service: every identity manager composed on one database."""

from __future__ import annotations

from typing import Any

from oslo_config import cfg

from nimbus import exception, registry
from nimbus.db import Database
from nimbus.drivers.identity import IdentityDriver
from nimbus.identity.assignment import AssignmentManager
from nimbus.identity.auth import AuthManager
from nimbus.identity.catalog import CatalogManager
from nimbus.identity.resource import ResourceManager
from nimbus.identity.token.formatter import TokenFormatter
from nimbus.identity.token.keys import KeyRepository
from nimbus.identity.token.revoke import RevocationList
from nimbus.identity.users import UserManager

__all__ = ["IdentityService"]


class IdentityService:
    """Users, projects, roles, the catalog and tokens, ready for the API.

    :param conf: the nimbus config.
    :param database: nimbus's database (schema already upgraded).
    :param driver: an identity back-end; by default the one named by
        ``[identity] driver``, loaded from ``nimbus.identity.backends``.
    :param keys: the Fernet key repository; by default the configured one.
    """

    def __init__(
        self,
        conf: cfg.ConfigOpts,
        database: Database,
        *,
        driver: IdentityDriver | None = None,
        keys: KeyRepository | None = None,
    ) -> None:
        self.conf = conf
        self.db = database
        self.driver = driver or registry.load_driver(
            "nimbus.identity.backends",
            conf.identity.driver,
            conf,
            database=database,
            expected=IdentityDriver,
        )
        self.keys = keys or KeyRepository.from_conf(conf)
        self.revocations = RevocationList.from_conf(conf, database)
        self.catalog = CatalogManager(database)
        self.assignments = AssignmentManager(
            database,
            self._revoke,
            groups_for_user=lambda user_id: self.users.group_ids_for_user(user_id),
            users_in_group=lambda group_id: self.users.user_ids_in_group(group_id),
        )
        self.resources = ResourceManager(
            database, self._revoke, on_delete_target=self.assignments.delete_target
        )
        self.users = UserManager(
            self.driver,
            self._revoke,
            check_domain=self._check_domain,
            check_project=self._check_project,
            delete_actor=self.assignments.delete_actor,
        )
        self.auth = AuthManager(
            conf,
            users=self.users,
            resources=self.resources,
            assignments=self.assignments,
            catalog=self.catalog,
            formatter=TokenFormatter(self.keys),
            revocations=self.revocations,
        )

    def _revoke(self, **attrs: Any) -> None:
        self.revocations.revoke(**attrs)

    def _check_domain(self, domain_id: str) -> None:
        try:
            self.resources.get_domain(domain_id)
        except exception.NotFound as ex:
            raise exception.ValidationError(
                field="domain_id", reason=f"domain {domain_id} does not exist"
            ) from ex

    def _check_project(self, project_id: str) -> None:
        try:
            self.resources.get_project(project_id)
        except exception.NotFound as ex:
            raise exception.ValidationError(
                field="default_project_id", reason=f"project {project_id} does not exist"
            ) from ex

    def context_for_token(self, token: str) -> Any:
        """Validate a token for the auth middleware."""
        return self.auth.context_for_token(token)
