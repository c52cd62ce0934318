"""Policy defaults defined in code, overridable from a policy file.

``oslo-policy-sample-generator --namespace nimbus`` prints them all.
"""

from __future__ import annotations

from oslo_policy import policy

from nimbus.policies import base, identity, image

__all__ = ["list_rules"]


def list_rules() -> list[policy.RuleDefault]:
    """Return every nimbus policy default."""
    return [*base.list_rules(), *identity.list_rules(), *image.list_rules()]
