"""Stateless Fernet tokens: keys, the token format and revocation events."""

from nimbus.identity.token.formatter import (
    METHODS,
    TokenFormatter,
    TokenPayload,
    is_expired,
    isotime,
    new_audit_id,
)
from nimbus.identity.token.keys import (
    KeyRepository,
    KeyRepositoryError,
    KeySource,
    RotationResult,
    repository_path,
)
from nimbus.identity.token.revoke import RevocationEvent, RevocationList, TokenValues, matches

__all__ = [
    "METHODS",
    "KeyRepository",
    "KeyRepositoryError",
    "KeySource",
    "RevocationEvent",
    "RevocationList",
    "RotationResult",
    "TokenFormatter",
    "TokenPayload",
    "TokenValues",
    "is_expired",
    "isotime",
    "matches",
    "new_audit_id",
    "repository_path",
]
