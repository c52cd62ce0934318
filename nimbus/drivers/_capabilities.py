"""Hold every driver to the capabilities it declares.

A driver kind's base class names its optional operations and the
capability each needs; :func:`guard_optional_operations`, called from the
base's ``__init_subclass__``, wraps those methods so that a driver whose
``capabilities`` lack the capability raises
:class:`~nimbus.exception.OperationNotSupported` instead of running them.
A subclass that narrows ``capabilities`` (a read-only flavour of a
writable back-end, say) therefore refuses what it no longer declares,
without repeating any method.
"""

from __future__ import annotations

import enum
import functools
import types
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from nimbus import exception

__all__ = ["CapabilityGuarded", "guard_optional_operations"]

#: Set on a guarded method: the capability it checks.
_NEEDS = "_nimbus_needs_capability"


def _guarded(method: Callable[..., Any], operation: str, capability: enum.Enum) -> Any:
    @functools.wraps(method)
    def guarded(self: Any, /, *args: Any, **kwargs: Any) -> Any:
        if capability not in self.capabilities:
            raise exception.OperationNotSupported(driver=self.name, operation=operation)
        return method(self, *args, **kwargs)

    setattr(guarded, _NEEDS, capability)
    return guarded


def guard_optional_operations(cls: type, operations: Mapping[str, enum.Enum]) -> None:
    """Make each optional operation of *cls* check its capability first.

    Methods already guarded (inherited from a guarded class) are left as
    they are; so are names *cls* does not have.

    :param cls: a driver class; its instances have ``capabilities`` and
        ``name``.
    :param operations: method name to the capability it needs.
    """
    for operation, capability in operations.items():
        method = getattr(cls, operation, None)
        if method is None or getattr(method, _NEEDS, None) is capability:
            continue
        setattr(cls, operation, _guarded(method, operation, capability))


class CapabilityGuarded:
    """Mixin of a plugin base class whose subclasses are held to their capabilities.

    The base sets :attr:`optional_operations`; every class below it is
    guarded by :func:`guard_optional_operations` when it is defined.
    Instances need ``capabilities`` and ``name``.
    """

    #: Method name to the capability it needs; the base class sets it.
    optional_operations: ClassVar[Mapping[str, enum.Enum]] = types.MappingProxyType({})

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Guard the optional operations of *cls* by its capabilities.

        A subclass that narrows ``capabilities`` refuses what it no
        longer declares, whatever it inherits.
        """
        super().__init_subclass__(**kwargs)
        guard_optional_operations(cls, cls.optional_operations)

    @property
    def name(self) -> str:
        """Return the plugin's name, used in error messages."""
        return type(self).__name__
