"""Cheaper evaluation of oslo.policy checks, with the same outcomes.

oslo.policy spends most of an authorization on two things that depend only
on the text of the rules, and redoes them on every evaluation:

* ``_checks._check`` asks :func:`inspect.getfullargspec` of each check's
  ``__call__`` whether it takes ``current_rule`` (about 12 us, seven times
  for the rule of a token validation);
* ``GenericCheck`` (``system_scope:all``, ``is_admin_project:True``,
  ``user_id:%(...)s``) tries ``ast.literal_eval`` on its left side, which
  nearly always fails with ValueError: a parse and an exception each time.

:func:`install` remembers both answers.  It must run before rules are
parsed (rule defaults are parsed when they are made), so
:mod:`nimbus.policies` imports this module first.  Each replacement is only
put in place when oslo.policy's own code has the shape it was written for;
otherwise oslo.policy is left as it is.
"""

from __future__ import annotations

import ast
import functools
import inspect
from typing import Any

from oslo_policy import _checks

__all__ = ["install", "installed"]

#: Whether a check's ``__call__`` takes ``current_rule``, by its function.
_TAKES_CURRENT_RULE: dict[Any, bool] = {}
_CHECK_PARAMETERS = ("rule", "target", "creds", "enforcer", "current_rule")
_NOT_A_LITERAL = object()


def evaluate(rule: Any, target: Any, creds: Any, enforcer: Any, current_rule: str | None) -> bool:
    """Evaluate one check as ``oslo_policy._checks._check`` does, remembering the argspec."""
    call = rule.__call__
    function = getattr(call, "__func__", None)
    takes = _TAKES_CURRENT_RULE.get(function) if function is not None else None
    if takes is None:
        takes = len(inspect.getfullargspec(call).args) > 4
        if function is not None:
            _TAKES_CURRENT_RULE[function] = takes
    if takes:
        return rule(target, creds, enforcer, current_rule)
    return rule(target, creds, enforcer)


@functools.lru_cache(maxsize=1024)
def _literal(kind: str) -> Any:
    """Return ``ast.literal_eval(kind)``, or :data:`_NOT_A_LITERAL` where it raises ValueError."""
    try:
        return ast.literal_eval(kind)
    except ValueError:
        return _NOT_A_LITERAL


class GenericCheck(_checks.GenericCheck):
    """oslo.policy's ``kind:match`` check, with the literal parse of *kind* remembered."""

    def __call__(
        self, target: Any, creds: Any, enforcer: Any, current_rule: str | None = None
    ) -> bool:
        try:
            match = self.match % target
        except KeyError:
            return False
        value = _literal(self.kind)
        if value is not _NOT_A_LITERAL:
            return bool(match == str(value))
        return bool(self._find_in_dict(creds, self.kind.split("."), match))


def install() -> None:
    """Put :func:`evaluate` and :class:`GenericCheck` in oslo.policy, where they fit."""
    current = _checks._check
    if current is not evaluate:
        try:
            names = tuple(inspect.signature(current).parameters)
        except (TypeError, ValueError):
            names = ()
        if names == _CHECK_PARAMETERS:
            _checks._check = evaluate
    generic = _checks.registered_checks.get(None)
    if generic is _checks.GenericCheck and hasattr(generic, "_find_in_dict"):
        # The class every "kind:match" without a registered kind is parsed into.
        _checks.registered_checks[None] = GenericCheck


def installed() -> bool:
    """Return whether both replacements are in place."""
    return _checks._check is evaluate and _checks.registered_checks.get(None) is GenericCheck


install()
