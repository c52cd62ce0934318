"""Options of the ``[identity]``, ``[token]`` and ``[fernet_tokens]`` groups."""

from __future__ import annotations

from oslo_config import cfg

from nimbus.conf._groups import option_hooks

IDENTITY_GROUP = cfg.OptGroup("identity", title="Identity options", help="Users and passwords.")
TOKEN_GROUP = cfg.OptGroup("token", title="Token options", help="Token lifetime.")
FERNET_GROUP = cfg.OptGroup(
    "fernet_tokens", title="Fernet key options", help="The Fernet key repository."
)
CREDENTIAL_GROUP = cfg.OptGroup(
    "credential",
    title="Credential options",
    help="The keys that encrypt the blobs of ``/v3/credentials`` at rest.",
)

IDENTITY_OPTS = [
    cfg.StrOpt(
        "driver",
        default="sql",
        help="""Entry-point name of the users and groups store.

Possible values:
* ``sql``: users and groups in nimbus's database
* any name installed in the ``nimbus.identity.backends`` namespace
  (``nimbus plugins`` lists them)
""",
    ),
    cfg.StrOpt(
        "default_domain_id",
        default="default",
        help="Id of the domain used when a request names none.",
    ),
    cfg.StrOpt(
        "admin_project_name",
        default="admin",
        help="""Name of the project bootstrap gives the admin user the admin role on.

The openrc that ``nimbus up`` writes scopes to it.  With
``admin_project_only`` it is also the one admin project.

Related options:
* admin_project_domain_name
* admin_project_only
""",
    ),
    cfg.StrOpt(
        "admin_project_domain_name",
        default="Default",
        help="Name of the domain the admin project lives in.",
    ),
    cfg.BoolOpt(
        "admin_project_only",
        default=False,
        help="""Whether only the admin project makes cloud administrators.

False (Keystone's behaviour, what OpenStack's clients and test suite expect):
the admin role on a token scoped to any project makes its holder a cloud
administrator, so whoever may give the admin role on a project may make a
cloud administrator.  True (Keystone's ``[resource] admin_project_name``):
only the admin role on ``admin_project_name`` in
``admin_project_domain_name`` (or on the system) does; the admin role on any
other project grants no more than member there.  Set it when project
administrators are not to be trusted with the cloud.

Related options:
* admin_project_name
""",
    ),
    cfg.IntOpt(
        "password_hash_rounds",
        default=12,
        min=4,
        max=31,
        help="""bcrypt cost factor for stored passwords.

Each step doubles the time to hash and to check a password, for users and
for attackers alike.  12 is Keystone's default.
""",
    ),
    cfg.IntOpt(
        "max_password_length",
        default=4096,
        min=1,
        help="Longest password accepted, in characters.",
    ),
    cfg.IntOpt(
        "lockout_failure_attempts",
        default=0,
        min=0,
        help="""Failed logins in a row after which a user is locked out.

0 disables lock-out, as in Keystone.  A locked user cannot authenticate
until ``lockout_duration`` has passed or an admin resets the password.

Related options:
* lockout_duration
""",
    ),
    cfg.ListOpt(
        "lockout_ignored_user_ids",
        default=[],
        help="""Ids of users who are never locked out, however many logins fail.

Keystone's ``ignore_lockout_failure_attempts`` for the accounts that must
stay reachable (the cloud admin, service users): anyone who can reach the
API could otherwise lock them out with a few wrong passwords.  Their
failures are not counted at all.

Related options:
* lockout_failure_attempts
""",
    ),
    cfg.IntOpt(
        "lockout_duration",
        default=1800,
        min=1,
        help="""Seconds a locked-out user stays locked.

Related options:
* lockout_failure_attempts
""",
    ),
    cfg.IntOpt(
        "list_limit",
        default=1000,
        min=1,
        help="Most entries returned by one page of an identity listing.",
    ),
]

TOKEN_OPTS = [
    cfg.IntOpt(
        "expiration",
        default=3600,
        min=1,
        help="Seconds a token stays valid after it is issued.",
    ),
    cfg.IntOpt(
        "allow_expired_window",
        default=172800,
        min=0,
        help="""Seconds after expiry in which ``?allow_expired=1`` still validates a token.

Services use it to finish long operations started with a token that has
since expired.
""",
    ),
    cfg.IntOpt(
        "cache_time",
        default=300,
        min=0,
        help="""Seconds a validation result is reused before it is recomputed.

Revocations and role changes made in this process invalidate the cache at
once; those made by other processes are seen within
``revocation_refresh_interval``, because every validation checks the
revocation list.

Related options:
* revocation_refresh_interval
""",
    ),
    cfg.FloatOpt(
        "revocation_refresh_interval",
        default=1.0,
        min=0,
        help="""Seconds between re-reads of the revocation list from the database.

A token revoked through another API process stops working within this
time; 0 re-reads it on every validation.
""",
    ),
    cfg.FloatOpt(
        "revocation_prune_interval",
        default=600.0,
        min=0,
        help="""Seconds between two deletions of revocation events nothing can match.

An event can match only tokens issued before it, which are refused once
``expiration`` plus ``allow_expired_window`` has passed; each API process
deletes older events at start-up and then this often.  0 prunes at
start-up only.

Related options:
* expiration
* allow_expired_window
""",
    ),
]

FERNET_OPTS = [
    cfg.StrOpt(
        "key_repository",
        help="""Directory holding the Fernet keys (files named 0, 1, 2, ...).

When unset, ``<state_path>/fernet-keys`` is used.  Every API process that
issues or validates tokens must see the same keys.

Related options:
* max_active_keys
""",
    ),
    cfg.IntOpt(
        "max_active_keys",
        default=3,
        min=2,
        help="""Keys kept after a rotation: the staged key, the primary and the rest.

Set it to at least ``token expiration / rotation interval + 2``.
""",
    ),
]

CREDENTIAL_OPTS: list[cfg.Opt] = [
    cfg.StrOpt(
        "key_repository",
        help="""Directory holding the credential encryption keys (files named 0, 1, 2, ...).

When unset, ``<state_path>/credential-keys`` is used.  ``nimbus up``,
``nimbus bootstrap`` and ``nimbus credential setup`` create it with two keys
when it holds none.  Keep it apart from the token keys (Keystone's
``[credential] key_repository``): every API process must see the same keys,
and losing them loses every stored credential.

Related options:
* [fernet_tokens] key_repository
""",
    ),
]


register_opts, list_opts = option_hooks(
    (IDENTITY_GROUP, IDENTITY_OPTS),
    (TOKEN_GROUP, TOKEN_OPTS),
    (FERNET_GROUP, FERNET_OPTS),
    (CREDENTIAL_GROUP, CREDENTIAL_OPTS),
)
