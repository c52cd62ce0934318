"""What the compute API tells about hosts: services, hypervisors, availability zones.

The records are the scheduler's inventory (agents' heartbeats and
reports); this adds the policy and Nova's notions on top: a service is
``up`` while its heartbeats are fresh, a host is in the availability zone
its aggregates name (``[compute] default_availability_zone`` otherwise),
and services that run no guests are in the ``internal`` zone.
"""

from __future__ import annotations

from typing import Any

from oslo_config import cfg

from nimbus import exception
from nimbus.compute.scheduler.inventory import COMPUTE_BINARY, HostInventory
from nimbus.context import RequestContext
from nimbus.policy import Enforcer

__all__ = ["INTERNAL_ZONE", "HostService"]

INTERNAL_ZONE = "internal"


class HostService:
    """Services, hypervisors and availability zones for the API.

    :param conf: the nimbus config.
    :param inventory: the scheduler's records of services and nodes.
    :param enforcer: the policy.
    """

    def __init__(self, conf: cfg.ConfigOpts, inventory: HostInventory, enforcer: Enforcer) -> None:
        self.conf = conf
        self.inventory = inventory
        self.enforcer = enforcer

    def _zones_of_hosts(self) -> dict[str, str]:
        zones: dict[str, str] = {}
        for aggregate in self.inventory.list_aggregates():
            zone = aggregate["metadata"].get("availability_zone")
            if zone:
                for host in aggregate["hosts"]:
                    zones.setdefault(host, zone)
        return zones

    def zone_of(self, service: dict[str, Any], zones: dict[str, str] | None = None) -> str:
        """Return the availability zone a service is in."""
        if service["binary"] != COMPUTE_BINARY:
            return INTERNAL_ZONE
        found = (zones if zones is not None else self._zones_of_hosts()).get(service["host"])
        return found or str(self.conf.compute.default_availability_zone)

    # -- services ----------------------------------------------------------------

    def services(
        self, ctx: RequestContext, *, host: str | None = None, binary: str | None = None
    ) -> list[dict[str, Any]]:
        """Return the services (``os-services``), each with its zone and whether it is up."""
        self.enforcer.authorize(ctx, "os_compute_api:os-services:list")
        zones = self._zones_of_hosts()
        found = self.inventory.list_services(host=host, binary=binary)
        return [{**s, "zone": self.zone_of(s, zones)} for s in found]

    def set_status(
        self,
        ctx: RequestContext,
        host: str,
        binary: str,
        *,
        disabled: bool,
        reason: str | None = None,
    ) -> dict[str, Any]:
        """Enable or disable a service (a disabled compute host gets no new servers)."""
        self.enforcer.authorize(ctx, "os_compute_api:os-services:update")
        try:
            return self.inventory.set_service_status(
                (host, binary), disabled=disabled, reason=reason
            )
        except exception.NotFound:
            raise exception.NotFound(
                f"Service {binary} on host {host} not found.", kind="service", id=host
            ) from None

    def delete_service(self, ctx: RequestContext, service_id: str) -> None:
        """Delete a service (a compute service takes its nodes with it)."""
        self.enforcer.authorize(ctx, "os_compute_api:os-services:delete")
        self.inventory.delete_service(service_id)

    # -- hypervisors -------------------------------------------------------------

    def hypervisors(self, ctx: RequestContext, *, detail: bool) -> list[dict[str, Any]]:
        """Return the compute nodes, each with its service's state and status."""
        verb = "list-detail" if detail else "list"
        self.enforcer.authorize(ctx, f"os_compute_api:os-hypervisors:{verb}")
        services = {s["host"]: s for s in self.inventory.list_services(binary=COMPUTE_BINARY)}
        return [self._with_service(n, services.get(n["host"])) for n in self.inventory.list_nodes()]

    def hypervisor(self, ctx: RequestContext, node_id: str) -> dict[str, Any]:
        """Return one compute node. :raises NotFound: no node has that id."""
        self.enforcer.authorize(ctx, "os_compute_api:os-hypervisors:show")
        try:
            node = self.inventory.get_node(int(node_id) if node_id.isdigit() else node_id)
        except exception.NotFound:
            raise exception.NotFound(
                f"Hypervisor with ID '{node_id}' could not be found.", kind="hypervisor", id=node_id
            ) from None
        services = self.inventory.list_services(host=node["host"], binary=COMPUTE_BINARY)
        return self._with_service(node, services[0] if services else None)

    def statistics(self, ctx: RequestContext) -> dict[str, int]:
        """Return the nodes' totals (``os-hypervisors/statistics``)."""
        self.enforcer.authorize(ctx, "os_compute_api:os-hypervisors:statistics")
        return self.inventory.statistics()

    @staticmethod
    def _with_service(node: dict[str, Any], service: dict[str, Any] | None) -> dict[str, Any]:
        return {
            **node,
            "state": "up" if service and service["up"] else "down",
            "status": "disabled" if service and service["disabled"] else "enabled",
            "service": service,
        }

    # -- availability zones ------------------------------------------------------

    def zones(self, ctx: RequestContext, *, detail: bool) -> list[dict[str, Any]]:
        """Return the availability zones: the compute ones, and (in detail) ``internal``.

        Each has ``name``, ``available`` (some compute service in it is up
        and enabled) and, in detail, its hosts' services.
        """
        verb = "detail" if detail else "list"
        self.enforcer.authorize(ctx, f"os_compute_api:os-availability-zone:{verb}")
        zones = self._zones_of_hosts()
        found: dict[str, dict[str, Any]] = {}
        for service in self.inventory.list_services():
            zone = self.zone_of(service, zones)
            if zone == INTERNAL_ZONE and not detail:
                continue
            entry = found.setdefault(zone, {"name": zone, "available": False, "hosts": {}})
            usable = service["up"] and not service["disabled"]
            entry["available"] = entry["available"] or usable or zone == INTERNAL_ZONE
            entry["hosts"].setdefault(service["host"], {})[service["binary"]] = service
        return sorted(found.values(), key=lambda z: z["name"])
