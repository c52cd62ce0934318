"""Policy defaults defined in code, overridable from a policy file.

The shared rules are in :mod:`nimbus.policies.base`; each installed service
adds its own through its descriptor
(:attr:`nimbus.descriptor.ServiceDescriptor.policy_module`).
``oslo-policy-sample-generator --namespace nimbus`` prints them all.
"""

from __future__ import annotations

# Before any rule below is parsed: see nimbus.policy_checks.
from nimbus import policy_checks  # noqa: F401  # isort: skip

from oslo_policy import policy

from nimbus.policies import base

__all__ = ["list_rules"]


def list_rules() -> list[policy.RuleDefault]:
    """Return every nimbus policy default."""
    from nimbus import descriptor

    rules = list(base.list_rules())
    for service in descriptor.descriptors():
        rules.extend(service.policies())
    return rules
