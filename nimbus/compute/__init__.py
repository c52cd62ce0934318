"""The compute service (Nova v2.1): flavors, key pairs, quotas; servers to come."""

from nimbus.compute.flavors import FlavorService
from nimbus.compute.keypairs import KeypairService
from nimbus.compute.quotas import QuotaService

__all__ = ["FlavorService", "KeypairService", "QuotaService"]
