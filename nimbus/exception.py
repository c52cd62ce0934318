"""Domain exceptions shared by every nimbus layer.

These know nothing of HTTP: ``nimbus.api.errors`` maps them to status codes
and to each API's error body.  A subclass sets ``msg_fmt``, which is filled
from the keyword arguments given to the constructor.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AuthenticationFailed",
    "BadRequest",
    "Conflict",
    "DBConnectionError",
    "DriverError",
    "Forbidden",
    "InstanceExists",
    "InstanceInvalidState",
    "InstanceNotFound",
    "Invalid",
    "InvalidState",
    "MessagingError",
    "MessagingTimeout",
    "NimbusException",
    "NoValidHost",
    "NotFound",
    "OperationNotSupported",
    "OverLimit",
    "PayloadTooLarge",
    "PluginLoadError",
    "PluginNotFound",
    "PolicyNotAuthorized",
    "QuotaExceeded",
    "RangeNotSatisfiable",
    "RequestTimeout",
    "StorageFull",
    "TokenNotFound",
    "Unauthorized",
    "UserLockedOut",
    "ValidationError",
]


class NimbusException(Exception):
    """Base of every nimbus error; the message is built from ``msg_fmt``."""

    msg_fmt = "An unknown error occurred."

    def __init__(self, message: str | None = None, **kwargs: Any) -> None:
        self.kwargs = kwargs
        if message is None:
            try:
                message = self.msg_fmt % kwargs
            except (KeyError, TypeError, ValueError):
                # A wrong format key is a programming error, but the caller
                # still deserves the template rather than a second exception.
                message = self.msg_fmt
        self.message = message
        super().__init__(message)

    def __str__(self) -> str:
        return self.message


class Invalid(NimbusException):
    msg_fmt = "Invalid input: %(reason)s"


class BadRequest(Invalid):
    msg_fmt = "%(reason)s"


class ValidationError(Invalid):
    msg_fmt = "Invalid input for field '%(field)s': %(reason)s"


class PayloadTooLarge(Invalid):
    msg_fmt = "Request body is larger than the limit of %(limit)d bytes."


class RequestTimeout(NimbusException):
    msg_fmt = "The request body did not arrive in time."


class Unauthorized(NimbusException):
    msg_fmt = "The request you have made requires authentication."


class AuthenticationFailed(Unauthorized):
    msg_fmt = "The request you have made requires authentication."


class UserLockedOut(AuthenticationFailed):
    """Too many failed logins in a row: refused with a wrong password's message.

    The answer does not tell a locked account from a wrong password or an
    unknown user; ``user_id`` is for the server's own log.
    """


class TokenNotFound(Unauthorized):
    msg_fmt = "Failed to validate token: %(reason)s"


class Forbidden(NimbusException):
    msg_fmt = "You are not authorized to perform the requested action."


class PolicyNotAuthorized(Forbidden):
    msg_fmt = "You are not authorized to perform the requested action: %(action)s."


class NotFound(NimbusException):
    msg_fmt = "Could not find %(kind)s: %(id)s."


class InstanceNotFound(NotFound):
    msg_fmt = "Instance %(uuid)s could not be found."


class Conflict(NimbusException):
    msg_fmt = "Conflict occurred attempting to store %(kind)s - %(reason)s."


class InvalidState(Conflict):
    msg_fmt = "%(reason)s"


class InstanceInvalidState(InvalidState):
    msg_fmt = "Cannot %(operation)s instance %(uuid)s while it is %(state)s."


class InstanceExists(Conflict):
    msg_fmt = "Instance %(uuid)s already exists."


class InstanceIsLocked(InvalidState):
    msg_fmt = "Instance %(uuid)s is locked"


class OverLimit(NimbusException):
    msg_fmt = "%(reason)s"


class QuotaExceeded(OverLimit):
    msg_fmt = (
        "Quota exceeded for %(resource)s: %(requested)s requested, %(used)s in use, "
        "limit %(limit)s."
    )


class StorageFull(OverLimit):
    msg_fmt = "The %(store)s store has no room for the data: %(reason)s"


class RangeNotSatisfiable(NimbusException):
    msg_fmt = "The requested range %(range)s cannot be satisfied for %(size)d bytes."


class OperationNotSupported(NimbusException):
    msg_fmt = "The %(driver)s driver does not support %(operation)s."


class DriverError(NimbusException):
    msg_fmt = "The %(driver)s driver failed: %(reason)s"


class PluginNotFound(NimbusException):
    msg_fmt = "No plugin named '%(name)s' in namespace '%(namespace)s'; installed: %(available)s."


class PluginLoadError(NimbusException):
    msg_fmt = "Plugin '%(name)s' in namespace '%(namespace)s' could not be loaded: %(reason)s"


class DBConnectionError(NimbusException):
    msg_fmt = "Could not connect to the database after %(attempts)d attempts: %(reason)s"


class MessagingError(NimbusException):
    msg_fmt = "Messaging failed: %(reason)s"


class MessagingTimeout(MessagingError):
    msg_fmt = "No reply to %(method)s on topic %(topic)s within %(timeout)s seconds."


class VersionNotAcceptable(NimbusException):
    msg_fmt = (
        "Version %(version)s is not supported by the API. "
        "Minimum is %(minimum)s and maximum is %(maximum)s."
    )


class InvalidAPIVersion(Invalid):
    msg_fmt = (
        "API Version String %(version)s is of invalid format. Must be of format MajorNum.MinorNum."
    )


class FlavorNotFound(NotFound):
    msg_fmt = "Flavor %(id)s could not be found."


class KeypairNotFound(NotFound):
    msg_fmt = "Keypair %(name)s not found for user %(user_id)s"


class ComputeQuotaExceeded(Forbidden):
    """A compute quota refuses the request: Nova answers these with 403."""

    msg_fmt = "%(reason)s"


class NoValidHost(NimbusException):
    """No host passed the scheduler's filters (or none had room left to claim).

    ``reason`` says which filter removed how many hosts and why.
    """

    msg_fmt = "No valid host was found. %(reason)s"
