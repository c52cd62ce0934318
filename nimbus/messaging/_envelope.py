"""The JSON envelope around every RPC request, reply and notification.

A request is ``{"v": 1, "kind": "call"|"cast", "method": ..., "args": {...},
"context": {...}}``; a reply is ``{"v": 1, "result": ...}`` or
``{"v": 1, "failure": {"module": ..., "class": ..., "message": ...}}``.
"""

from __future__ import annotations

import importlib
import json
import logging
from typing import Any

from nimbus import exception

LOG = logging.getLogger(__name__)

ENVELOPE_VERSION = 1


def encode(value: dict[str, Any]) -> bytes:
    """Serialise *value* as compact JSON.

    :raises MessagingError: *value* holds something JSON cannot represent.
    """
    try:
        return json.dumps(value, separators=(",", ":"), allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as ex:
        raise exception.MessagingError(reason=f"payload is not JSON serialisable: {ex}") from ex


def decode(body: bytes) -> dict[str, Any]:
    """Parse an envelope.

    :raises MessagingError: *body* is not a JSON object.
    """
    try:
        value = json.loads(body)
    except (UnicodeDecodeError, ValueError) as ex:
        raise exception.MessagingError(reason=f"malformed message: {ex}") from ex
    if not isinstance(value, dict):
        raise exception.MessagingError(reason="malformed message: not a JSON object")
    return value


def failure_to_dict(ex: BaseException) -> dict[str, str]:
    """Describe a handler's exception for the caller."""
    cls = type(ex)
    return {"module": cls.__module__, "class": cls.__qualname__, "message": str(ex)}


def _find_nimbus_class(module: str, qualname: str) -> type[exception.NimbusException] | None:
    pending: list[type[exception.NimbusException]] = [exception.NimbusException]
    while pending:
        cls = pending.pop()
        if cls.__module__ == module and cls.__qualname__ == qualname:
            return cls
        pending.extend(cls.__subclasses__())
    return None


def failure_from_dict(failure: dict[str, Any]) -> Exception:
    """Rebuild the exception a remote handler raised.

    A nimbus exception comes back as the same class with the same message;
    only classes under the ``nimbus`` package are looked up, so a message
    cannot make the caller import arbitrary code.  Anything else becomes a
    :class:`~nimbus.exception.MessagingError` naming the remote type.
    """
    module = str(failure.get("module", ""))
    qualname = str(failure.get("class", "Exception"))
    message = str(failure.get("message", ""))
    cls = _find_nimbus_class(module, qualname)
    if cls is None and (module == "nimbus" or module.startswith("nimbus.")):
        try:
            importlib.import_module(module)
        except ImportError as ex:
            LOG.debug("Remote exception module %s is not importable here: %s", module, ex)
        else:
            cls = _find_nimbus_class(module, qualname)
    if cls is not None:
        try:
            return cls(message)
        except Exception as ex:  # noqa: BLE001 - a subclass with an odd constructor
            LOG.debug("Cannot rebuild remote %s.%s: %s", module, qualname, ex)
    remote = qualname if module in ("builtins", "") else f"{module}.{qualname}"
    return exception.MessagingError(reason=f"remote {remote}: {message}")
