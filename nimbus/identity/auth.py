"""Authentication and tokens: issue, validate and revoke.

Tokens are Fernet tokens (:mod:`nimbus.identity.token`): nothing is stored
per token.  What a token stands for (user, scope, roles) is rebuilt from the
database when it is first validated, then cached in memory for
``[token] cache_time``.  Every validation checks the revocation list, so a
revoked token, a changed password, a disabled user or project and a removed
role take effect at once in this process and within
``[token] revocation_refresh_interval`` in the others; in the other workers
of one ``nimbus up`` at once too, through its shared change stamps
(:mod:`nimbus.common.changes`), which also clear their cached validations
when roles, grants or memberships change.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import json
import threading
import time
from collections.abc import Callable
from typing import Any

from oslo_config import cfg

from nimbus import exception
from nimbus.common.changes import Change, Changes
from nimbus.context import RequestContext
from nimbus.drivers.identity import User
from nimbus.identity.assignment import SYSTEM, AssignmentManager
from nimbus.identity.catalog import CatalogManager
from nimbus.identity.common import INTERNAL, Manager
from nimbus.identity.resource import ResourceManager
from nimbus.identity.token import formatter as token_formatter
from nimbus.identity.token.revoke import RevocationList
from nimbus.identity.users import UserManager
from nimbus.policy import Enforcer

__all__ = ["AuthManager", "TokenData", "format_time"]

_CACHE_SIZE = 10000


def utcnow() -> datetime.datetime:
    """Return the current time, timezone-aware UTC."""
    return datetime.datetime.now(datetime.UTC)


def format_time(value: datetime.datetime) -> str:
    """Render a time as Keystone does: ``2026-11-21T21:00:00.000000Z``."""
    return value.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclasses.dataclass(frozen=True)
class TokenData:
    """Everything a valid token stands for."""

    token_id: str
    user: User
    user_domain: dict[str, Any]
    methods: tuple[str, ...]
    audit_ids: tuple[str, ...]
    issued_at: datetime.datetime
    expires_at: datetime.datetime
    project: dict[str, Any] | None = None
    project_domain: dict[str, Any] | None = None
    domain: dict[str, Any] | None = None
    roles: tuple[dict[str, Any], ...] = ()
    is_admin_project: bool = False
    #: ``"all"`` for a system-scoped token.
    system: str | None = None
    #: What is worked out from the fields once and kept with them (the
    #: revocation attributes, rendered bodies): a cached validation is asked
    #: for them on every request.
    _memo: dict[Any, Any] = dataclasses.field(
        default_factory=dict, init=False, compare=False, repr=False
    )

    @property
    def role_ids(self) -> frozenset[str]:
        """Return the ids of the token's effective roles."""
        return frozenset(r["id"] for r in self.roles)

    def revocation_values(self) -> dict[str, Any]:
        """Return the attributes revocation events are matched against."""
        values = self._memo.get("revocation")
        if values is None:
            values = self._memo["revocation"] = self._revocation_values()
        return dict(values)

    def _revocation_values(self) -> dict[str, Any]:
        return {
            "user_id": self.user.id,
            "project_id": self.project["id"] if self.project else None,
            "domain_id": (self.domain or self.project_domain or {}).get("id"),
            "user_domain_id": self.user.domain_id,
            "role_ids": self.role_ids,
            "audit_id": self.audit_ids[0],
            "audit_chain_id": self.audit_ids[-1],
            "issued_at": self.issued_at,
            "expires_at": self.expires_at,
        }


def _named(ref: dict[str, Any]) -> dict[str, Any]:
    return {"id": ref["id"], "name": ref["name"]}


@dataclasses.dataclass(eq=False)
class AuthManager(Manager):
    """Issue, validate and revoke tokens.

    :param conf: the nimbus config (``[token]``, ``[identity]``).
    :param users: users and groups.
    :param resources: domains and projects.
    :param assignments: roles.
    :param catalog: the service catalog.
    :param formatter: encrypts and decrypts token payloads.
    :param revocations: the revocation list.
    :param enforcer: checks the ``identity:*`` rules.
    :param now: injected clock returning aware UTC datetimes.
    :param clock: injected monotonic clock for the cache.
    :param changes: stamps shared with the server's other workers: dropping
        the cached validations here drops theirs.
    """

    conf: cfg.ConfigOpts
    _: dataclasses.KW_ONLY
    users: UserManager
    resources: ResourceManager
    assignments: AssignmentManager
    catalog: CatalogManager
    formatter: token_formatter.TokenFormatter
    revocations: RevocationList
    enforcer: Enforcer
    now: Callable[[], datetime.datetime] = utcnow
    clock: Callable[[], float] = time.monotonic
    changes: Changes | None = None

    def __post_init__(self) -> None:
        self._cache: collections.OrderedDict[str, tuple[float, TokenData]] = (
            collections.OrderedDict()
        )
        self._lock = threading.Lock()
        # The stamp of Change.TOKENS the cache was last cleared at.
        self._seen_stamp = self._tokens_stamp()

    def _tokens_stamp(self) -> int | None:
        return None if self.changes is None else self.changes.stamp(Change.TOKENS)

    # -- issuing -------------------------------------------------------------

    def authenticate(self, auth: dict[str, Any]) -> TokenData:
        """Check the ``auth`` object of ``POST /v3/auth/tokens`` and issue a token.

        :param auth: the validated ``auth`` document (identity and scope).
        :raises Unauthorized: bad credentials, a disabled user, project or
            domain, or no role on the requested scope.
        """
        identity = auth["identity"]
        methods = list(dict.fromkeys(identity["methods"]))
        user: User | None = None
        expires_at: datetime.datetime | None = None
        parent_audit: str | None = None
        # A token method keeps the methods its token was got with, as Keystone:
        # a rescoped password token says ["password", "token"].
        inherited: tuple[str, ...] = ()
        for method in methods:
            if method == "password":
                found = self._password_user(identity.get("password"))
            elif method == "token":
                parent = self._parent_token(self._token_id(identity.get("token")))
                found = parent.user
                expires_at = parent.expires_at
                parent_audit = parent.audit_ids[-1]
                inherited = parent.methods
            else:
                raise exception.Unauthorized(f"Authentication method {method!r} is not supported.")
            if user is not None and found.id != user.id:
                raise exception.Unauthorized("The authentication methods name different users.")
            user = found
        assert user is not None
        user_domain = self._enabled_domain(user.domain_id)
        now = self.now()
        if expires_at is None:
            expires_at = now + datetime.timedelta(seconds=self.conf.token.expiration)
        audit_ids: tuple[str, ...] = (token_formatter.new_audit_id(),)
        if parent_audit is not None:
            audit_ids += (parent_audit,)
        scope = self._scope(user, auth.get("scope"))
        payload = token_formatter.TokenPayload(
            user_id=user.id,
            methods=tuple(dict.fromkeys([*inherited, *methods])),
            issued_at=now,
            expires_at=expires_at,
            audit_ids=audit_ids,
            project_id=scope.get("project_id"),
            domain_id=scope.get("domain_id"),
            system=scope.get("system"),
        )
        token_id = self.formatter.encode(payload)
        data = self._build(
            token_id, payload, user=user, user_domain=user_domain, project=scope.get("project")
        )
        self._remember(token_id, data)
        return data

    def _parent_token(self, token_id: str) -> TokenData:
        """Validate the token a ``token`` method presents.

        :raises NotFound: it is malformed, expired or revoked: a 404, as
            Keystone answers (the caller's own bad token stays a 401).
        """
        try:
            return self.validate(token_id)
        except exception.TokenNotFound as ex:
            raise exception.NotFound(
                message="The token to authenticate with could not be found: it is malformed,"
                " expired or revoked."
            ) from ex

    def _token_id(self, token: Any) -> str:
        if not isinstance(token, dict) or not isinstance(token.get("id"), str):
            raise exception.ValidationError(field="token", reason="'id' is required")
        return token["id"]

    def _password_user(self, password: Any) -> User:
        if not isinstance(password, dict) or not isinstance(password.get("user"), dict):
            raise exception.ValidationError(
                field="password", reason="'user' with 'password' is required"
            )
        ref = password["user"]
        secret = ref.get("password")
        if not isinstance(secret, str):
            raise exception.ValidationError(field="password", reason="'password' is required")
        try:
            if ref.get("id") is not None:
                user_id = ref["id"]
            else:
                domain_id = self._domain_id(ref.get("domain"))
                user_id = self.users.get_user_by_name(ref.get("name"), domain_id).id
        except exception.NotFound:
            # Spend the time a real check would, so that a timing does not
            # tell which user names exist.
            user_id = "0" * 32
        try:
            user = self.users.authenticate(user_id, secret)
        except exception.NotFound as ex:
            raise exception.AuthenticationFailed() from ex
        if not user.enabled:
            raise exception.Unauthorized(f"The account is disabled for user: {user.id}.")
        return user

    def _domain_id(self, ref: Any) -> str:
        if not isinstance(ref, dict):
            raise exception.ValidationError(
                field="domain", reason="a user or project named by name needs a domain"
            )
        if ref.get("id") is not None:
            return str(ref["id"])
        if ref.get("name") is not None:
            try:
                return self.resources.domains.get_by(name=str(ref["name"]))["id"]
            except exception.NotFound as ex:
                raise exception.Unauthorized(f"Could not find domain: {ref['name']}.") from ex
        raise exception.ValidationError(field="domain", reason="'id' or 'name' is required")

    def _enabled_domain(self, domain_id: str) -> dict[str, Any]:
        """Return a domain a token may stand on. :raises Unauthorized: gone or disabled."""
        try:
            domain = self.resources.domains.get(INTERNAL, domain_id)
        except exception.NotFound as ex:
            raise exception.Unauthorized(f"Could not find domain: {domain_id}.") from ex
        if not domain["enabled"]:
            raise exception.Unauthorized(f"Domain {domain['id']} is disabled.")
        return domain

    def _scope(self, user: User, scope: Any) -> dict[str, Any]:
        """Resolve the requested scope to ids (and the project read on the way, if any)."""
        if scope == "unscoped":
            # Explicitly unscoped: the default project is not used.
            return {}
        if scope is None:
            project_id = user.default_project_id
            if project_id:
                try:
                    project = self.resources.projects.get(INTERNAL, project_id)
                except exception.NotFound:
                    return {}
                if project["enabled"] and self.assignments.effective_role_ids(
                    user.id, project_id=project_id, project_domain_id=project["domain_id"]
                ):
                    return {"project_id": project_id, "project": project}
            return {}
        if not isinstance(scope, dict) or len(scope) != 1:
            raise exception.ValidationError(
                field="scope", reason="name exactly one of 'project', 'domain' or 'system'"
            )
        if "project" in scope:
            ref = scope["project"]
            if not isinstance(ref, dict):
                raise exception.ValidationError(field="scope.project", reason="must be an object")
            try:
                if ref.get("id") is not None:
                    project = self.resources.projects.get(INTERNAL, str(ref["id"]))
                else:
                    project = self.resources.projects.get_by(
                        name=str(ref.get("name")), domain_id=self._domain_id(ref.get("domain"))
                    )
            except exception.NotFound as ex:
                raise exception.Unauthorized(
                    f"Could not find project: {ref.get('id') or ref.get('name')}."
                ) from ex
            return {"project_id": project["id"], "project": project}
        if "domain" in scope:
            return {"domain_id": self._domain_id(scope["domain"])}
        if "system" in scope:
            ref = scope["system"]
            if not isinstance(ref, dict) or ref.get("all") is not True:
                raise exception.ValidationError(
                    field="scope.system", reason="the only system scope is {'all': true}"
                )
            return {"system": SYSTEM}
        raise exception.ValidationError(field="scope", reason="unknown scope")

    # -- validating ----------------------------------------------------------

    def _build(
        self,
        token_id: str,
        payload: token_formatter.TokenPayload,
        *,
        user: User | None = None,
        user_domain: dict[str, Any] | None = None,
        project: dict[str, Any] | None = None,
    ) -> TokenData:
        """Rebuild what a payload stands for, checking everything is still enabled.

        *user*, *user_domain* and *project* are what issuing has just read:
        given, they are not read again.
        """
        try:
            user = user or self.users.get_user(INTERNAL, payload.user_id)
        except exception.NotFound as ex:
            raise exception.TokenNotFound(reason="the user no longer exists") from ex
        if not user.enabled:
            raise exception.TokenNotFound(reason="the user is disabled")
        user_domain = user_domain or self._enabled_domain(user.domain_id)
        values: dict[str, Any] = {}
        if payload.project_id is not None:
            try:
                project = project or self.resources.projects.get(INTERNAL, payload.project_id)
            except exception.NotFound as ex:
                raise exception.Unauthorized(
                    f"Could not find project: {payload.project_id}."
                ) from ex
            project_domain = (
                user_domain
                if project["domain_id"] == user_domain["id"]
                else self.resources.domains.get(INTERNAL, project["domain_id"])
            )
            if not project["enabled"] or not project_domain["enabled"]:
                raise exception.Unauthorized(f"Project {project['id']} is disabled.")
            role_ids = self.assignments.effective_role_ids(
                user.id, project_id=project["id"], project_domain_id=project["domain_id"]
            )
            if not role_ids:
                raise exception.Unauthorized(
                    f"User {user.id} has no access to project {project['id']}."
                )
            values = {
                "project": project,
                "project_domain": project_domain,
                "is_admin_project": self._is_admin_project(project, project_domain),
            }
        elif payload.domain_id is not None:
            domain = self._enabled_domain(payload.domain_id)
            role_ids = self.assignments.effective_role_ids(user.id, domain_id=domain["id"])
            if not role_ids:
                raise exception.Unauthorized(
                    f"User {user.id} has no access to domain {domain['id']}."
                )
            values = {"domain": domain}
        elif payload.system is not None:
            role_ids = self.assignments.effective_role_ids(user.id, system=payload.system)
            if not role_ids:
                raise exception.Unauthorized(f"User {user.id} has no access to the system.")
            values = {"system": payload.system}
        else:
            role_ids = set()
        roles = tuple(
            _named(r)
            for r in sorted(
                self.assignments.roles.list(INTERNAL, ids=role_ids) if role_ids else [],
                key=lambda r: r["name"],
            )
        )
        return TokenData(
            token_id=token_id,
            user=user,
            user_domain=user_domain,
            methods=payload.methods,
            audit_ids=payload.audit_ids,
            issued_at=payload.issued_at,
            expires_at=payload.expires_at,
            roles=roles,
            **values,
        )

    def _is_admin_project(self, project: dict[str, Any], domain: dict[str, Any]) -> bool:
        """Tell whether a project-scoped token counts for the whole cloud (policies.base)."""
        identity = self.conf.identity
        if not identity.admin_project_only:
            return True
        return (
            project["name"] == identity.admin_project_name
            and domain["name"] == identity.admin_project_domain_name
        )

    def _remember(self, token_id: str, data: TokenData) -> None:
        with self._lock:
            self._cache[token_id] = (self.clock(), data)
            self._cache.move_to_end(token_id)
            while len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)

    def _cached(self, token_id: str) -> TokenData | None:
        stamp = self._tokens_stamp()
        with self._lock:
            if stamp != self._seen_stamp:
                # Another worker dropped its cached validations: so does this one.
                self._cache.clear()
                self._seen_stamp = stamp
                return None
            entry = self._cache.get(token_id)
            if entry is None:
                return None
            if self.clock() - entry[0] >= self.conf.token.cache_time:
                del self._cache[token_id]
                return None
            return entry[1]

    def forget_cached(self) -> None:
        """Drop every cached validation (after role or assignment changes).

        The change is committed: the workers sharing :attr:`changes` drop theirs too.
        """
        with self._lock:
            self._cache.clear()
        if self.changes is not None:
            self.changes.record(Change.TOKENS)

    def validate(self, token_id: str, *, allow_expired: bool = False) -> TokenData:
        """Return what *token_id* stands for.

        :param allow_expired: accept a token expired less than
            ``[token] allow_expired_window`` ago.
        :raises TokenNotFound: the token is malformed, expired or revoked,
            or its user is gone or disabled.
        :raises Unauthorized: its project or domain is gone or disabled, or
            the user has no role there any more.
        """
        data = self._cached(token_id)
        if data is None:
            payload = self.formatter.decode(token_id)
            data = self._build(token_id, payload)
            self._remember(token_id, data)
        now = self.now()
        window = self.conf.token.allow_expired_window if allow_expired else 0
        if data.expires_at + datetime.timedelta(seconds=window) <= now:
            raise exception.TokenNotFound(reason="the token has expired")
        if self.revocations.is_revoked(data.revocation_values()):
            raise exception.TokenNotFound(reason="the token has been revoked")
        return data

    def _subject(
        self, ctx: RequestContext, action: str, token_id: str, allow_expired: bool
    ) -> TokenData:
        """Validate another token for *ctx*, then check *action* on its user.

        :raises NotFound: the token is not valid (Keystone answers 404 for a
            subject token; 401 is kept for the caller's own token).
        """
        try:
            data = self.validate(token_id, allow_expired=allow_expired)
        except exception.Unauthorized as ex:
            raise exception.NotFound(kind="token", id="(subject token)") from ex
        self.authorize(ctx, action, {"target.token.user_id": data.user.id})
        return data

    def validate_token(
        self, ctx: RequestContext, token_id: str, *, allow_expired: bool = False
    ) -> TokenData:
        """Return what a subject token stands for (``GET /v3/auth/tokens``).

        :raises NotFound: the token is not valid.
        """
        return self._subject(ctx, "identity:validate_token", token_id, allow_expired)

    def check_token(
        self, ctx: RequestContext, token_id: str, *, allow_expired: bool = False
    ) -> TokenData:
        """Check a subject token (``HEAD /v3/auth/tokens``); as :meth:`validate_token`."""
        return self._subject(ctx, "identity:check_token", token_id, allow_expired)

    def revoke_token(
        self, ctx: RequestContext, token_id: str, *, allow_expired: bool = False
    ) -> None:
        """Revoke a subject token (by its audit id).

        :raises NotFound: the token is not valid.
        """
        data = self._subject(ctx, "identity:revoke_token", token_id, allow_expired)
        self.revocations.revoke(audit_id=data.audit_ids[0], expires_at=data.expires_at)
        with self._lock:
            self._cache.pop(data.token_id, None)

    def context_for_token(self, token_id: str) -> RequestContext:
        """Return a new request context for a valid token (the auth middleware's hook)."""
        data = self.validate(token_id)
        project = data.project or {}
        return RequestContext(
            user_id=data.user.id,
            user_name=data.user.name,
            user_domain_id=data.user.domain_id,
            project_id=project.get("id"),
            project_name=project.get("name"),
            project_domain_id=project.get("domain_id"),
            domain_id=(data.domain or {}).get("id"),
            system_scope=data.system,
            roles=[r["name"] for r in data.roles],
            audit_id=data.audit_ids[0],
            auth_token=token_id,
            authenticated=True,
            is_admin_project=data.is_admin_project,
        )

    # -- rendering -------------------------------------------------------------

    def render_json(self, data: TokenData, *, include_catalog: bool = True) -> bytes:
        """Return :meth:`render`'s body as JSON, encoded once per token and catalog.

        A token is validated again and again while its validation is cached;
        its body changes only with the catalog, so the encoded body is kept
        with the validation and made again when the catalog it was made from
        has been replaced.
        """
        catalog = self.catalog.raw_catalog() if include_catalog else None
        kept = data._memo.get(("json", include_catalog))
        if kept is not None and kept[0] is catalog:
            return kept[1]
        body = json.dumps(self.render(data, include_catalog=include_catalog), ensure_ascii=False)
        encoded = body.encode()
        data._memo[("json", include_catalog)] = (catalog, encoded)
        return encoded

    def render(self, data: TokenData, *, include_catalog: bool = True) -> dict[str, Any]:
        """Return the ``{"token": {...}}`` body Keystone sends for a token."""
        token: dict[str, Any] = {
            "methods": list(data.methods),
            "user": {
                "id": data.user.id,
                "name": data.user.name,
                "domain": _named(data.user_domain),
                "password_expires_at": None,
            },
            "audit_ids": list(data.audit_ids),
            "expires_at": format_time(data.expires_at),
            "issued_at": format_time(data.issued_at),
        }
        if data.project is not None:
            token["project"] = {**_named(data.project), "domain": _named(data.project_domain or {})}
            token["is_domain"] = False
            if self.conf.identity.admin_project_only:
                # Keystone says it only when an admin project is configured;
                # keystonemiddleware takes a missing one as true.
                token["is_admin_project"] = data.is_admin_project
        elif data.domain is not None:
            token["domain"] = _named(data.domain)
        elif data.system is not None:
            token["system"] = {data.system: True}
        if data.project is not None or data.domain is not None or data.system is not None:
            token["roles"] = [dict(r) for r in data.roles]
            if include_catalog:
                token["catalog"] = self.catalog.catalog_for(
                    user_id=data.user.id,
                    project_id=data.project["id"] if data.project else None,
                )
        return {"token": token}
