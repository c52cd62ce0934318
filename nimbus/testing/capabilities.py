"""Checks that a driver refuses the optional operations it does not declare.

The contract suites of each driver kind (:mod:`nimbus.testing.identity`,
:mod:`nimbus.testing.image_store`) use these with their kind's table of
optional operations; a driver that declares every capability is checked
through :func:`without_capability`, a copy of it that declares less.
"""

from __future__ import annotations

import copy
import enum
from collections.abc import Callable, Collection, Mapping
from typing import Any, TypeVar

import pytest

from nimbus import exception

__all__ = ["Call", "assert_unsupported", "needs", "skip_unless_offered", "without_capability"]

D = TypeVar("D")
F = TypeVar("F", bound=Callable[..., Any])

#: Set on a test by :func:`needs`: the capabilities it needs.
_NEEDS = "_nimbus_needs_capabilities"

#: Positional and keyword arguments of one call of an operation.
Call = tuple[tuple[Any, ...], dict[str, Any]]


def needs(*capabilities: enum.Enum) -> Callable[[F], F]:
    """Mark a test as needing *capabilities*; it is skipped without them.

    Subclasses of a contract suite may use it on their own extra tests too.
    """

    def mark(test: F) -> F:
        setattr(test, _NEEDS, frozenset(capabilities))
        return test

    return mark


def skip_unless_offered(request: pytest.FixtureRequest, fixture: str) -> None:
    """Skip the requesting test if the plugin of *fixture* lacks what it :func:`needs`.

    :param request: the test's request.
    :param fixture: the name of the fixture giving the plugin under test.
    """
    needed: frozenset[enum.Enum] = getattr(request.function, _NEEDS, frozenset())
    if not needed:
        return
    plugin = request.getfixturevalue(fixture)
    missing = sorted(cap.value for cap in needed - plugin.capabilities)
    if missing:
        pytest.skip(f"{plugin.name} does not offer {', '.join(missing)}")


def assert_unsupported(
    driver: Any,
    capability: enum.Enum,
    operations: Mapping[str, enum.Enum],
    calls: Mapping[str, Call],
) -> None:
    """Check that each operation needing *capability* raises ``OperationNotSupported``.

    :param driver: a driver whose ``capabilities`` lack *capability*.
    :param capability: the capability that guards the operations.
    :param operations: the kind's optional operations and their capabilities.
    :param calls: harmless arguments for each optional operation.
    :raises pytest.fail.Exception: an operation ran, or raised something else.
    """
    assert capability not in driver.capabilities, f"{driver.name} declares {capability.value}"
    names = sorted(name for name, needed in operations.items() if needed is capability)
    assert names, f"no operation needs {capability.value}"
    for name in names:
        args, kwargs = calls[name]
        try:
            getattr(driver, name)(*args, **kwargs)
        except exception.OperationNotSupported:
            pass
        else:
            pytest.fail(
                f"{driver.name} does not declare {capability.value}, yet {name}() ran "
                "instead of raising OperationNotSupported"
            )


def without_capability(driver: D, dropped: Collection[enum.Enum]) -> D:
    """Return a copy of *driver* whose class declares the *dropped* capabilities no more.

    The copy is an instance of a subclass made for the purpose, with a
    smaller ``capabilities`` and nothing else changed; it shares the
    driver's state (connections, files, data), so it needs no set-up of its
    own.

    :param driver: the driver to copy.
    :param dropped: capabilities the copy must lack.
    """
    cls = type(driver)
    suffix = "".join(cap.name.title().replace("_", "") for cap in dropped)
    narrower = type(
        f"{cls.__name__}Without{suffix}",
        (cls,),
        {
            "__doc__": f"{cls.__name__} without {', '.join(cap.value for cap in dropped)}.",
            "__module__": __name__,
            "__slots__": (),
            "capabilities": frozenset(cls.capabilities) - frozenset(dropped),  # type: ignore[attr-defined]
        },
    )
    clone = copy.copy(driver)
    clone.__class__ = narrower
    return clone
