"""Where :class:`~nimbus.policy.Enforcer` used to live; import it from :mod:`nimbus.policy`."""

from __future__ import annotations

from nimbus.policy import Enforcer

__all__ = ["Enforcer"]
