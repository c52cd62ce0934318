"""The compute service (Nova v2.1): servers, flavors, key pairs, quotas, and what runs them."""

from nimbus.compute.flavors import FlavorService
from nimbus.compute.keypairs import KeypairService
from nimbus.compute.quotas import QuotaService
from nimbus.compute.servers import ServerService

__all__ = ["FlavorService", "KeypairService", "QuotaService", "ServerService"]
