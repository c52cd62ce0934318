"""``/os-services``, ``/os-hypervisors``, ``/os-availability-zone`` (Nova v2.1)."""

from __future__ import annotations

import json
from typing import Any

import falcon

from nimbus.api import hooks
from nimbus.api.compute.base import Resource, db_time

_HOST_BINARY = {
    "type": "object",
    "properties": {
        "host": {"type": "string", "minLength": 1, "maxLength": 255},
        "binary": {"type": "string", "minLength": 1, "maxLength": 255},
        "disabled_reason": {"type": "string", "minLength": 1, "maxLength": 255},
    },
    "required": ["host", "binary"],
    "additionalProperties": False,
}


def _service_view(service: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": service["id"],
        "binary": service["binary"],
        "host": service["host"],
        "zone": service["zone"],
        "status": "disabled" if service["disabled"] else "enabled",
        "state": "up" if service["up"] else "down",
        "updated_at": db_time(service["updated_at"]),
        "disabled_reason": service["disabled_reason"],
    }


class Services(Resource):
    """``GET /os-services``: the cloud's services with their state (cloud admins)."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        found = self.service.services(
            self.ctx(req),
            host=req.get_param("host", default=None),
            binary=req.get_param("binary", default=None),
        )
        resp.media = {"services": [_service_view(s) for s in found]}


class ServiceItem(Resource):
    """``PUT /os-services/{enable,disable,disable-log-reason}`` switches a service;
    ``DELETE /os-services/{id}`` forgets one."""

    @falcon.before(hooks.validate(_HOST_BINARY))
    def on_put(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        if name not in ("enable", "disable", "disable-log-reason"):
            raise falcon.HTTPNotFound()
        resp.media = {"service": self.switch(req, name, self.body(req))}

    def on_delete(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        self.service.delete_service(self.ctx(req), name)
        resp.status = falcon.HTTP_204

    def switch(self, req: falcon.Request, verb: str, body: dict[str, Any]) -> dict[str, Any]:
        disabled = verb != "enable"
        reason = body.get("disabled_reason") if verb == "disable-log-reason" else None
        self.service.set_status(self.ctx(req), body["host"], body["binary"],
                                disabled=disabled, reason=reason)  # fmt: skip
        view = {"host": body["host"], "binary": body["binary"],
                "status": "disabled" if disabled else "enabled"}  # fmt: skip
        return view | ({"disabled_reason": reason} if reason else {})


def _hypervisor_view(node: dict[str, Any], *, detail: bool) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": node["id"],
        "hypervisor_hostname": node["hypervisor_hostname"],
        "state": node["state"],
        "status": node["status"],
    }
    if detail:
        service = node["service"] or {}
        view.update(
            {
                "vcpus": node["vcpus"],
                "memory_mb": node["memory_mb"],
                "local_gb": node["local_gb"],
                "vcpus_used": node["vcpus_used"],
                "memory_mb_used": node["memory_mb_used"],
                "local_gb_used": node["local_gb_used"],
                "free_ram_mb": node["memory_mb"] - node["memory_mb_used"],
                "free_disk_gb": node["local_gb"] - node["local_gb_used"],
                "current_workload": 0,
                "running_vms": node["running_vms"],
                "disk_available_least": node["disk_available_least"],
                "hypervisor_type": node["hypervisor_type"],
                "hypervisor_version": node["hypervisor_version"],
                "host_ip": "127.0.0.1",
                "cpu_info": json.dumps(node["cpu_info"]),
                "service": {
                    "host": node["host"],
                    "id": service.get("id"),
                    "disabled_reason": service.get("disabled_reason"),
                },
            }
        )
    return view


class Hypervisors(Resource):
    """``GET /os-hypervisors`` (and ``/detail``): the compute nodes (cloud admins)."""

    def __init__(self, service: Any, links: Any, *, detail: bool) -> None:
        super().__init__(service, links)
        self.detail = detail

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        nodes = self.service.hypervisors(self.ctx(req), detail=self.detail)
        resp.media = {"hypervisors": [_hypervisor_view(n, detail=self.detail) for n in nodes]}


class Hypervisor(Resource):
    """``GET /os-hypervisors/{id}``: one compute node in detail."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, node_id: str) -> None:
        node = self.service.hypervisor(self.ctx(req), node_id)
        resp.media = {"hypervisor": _hypervisor_view(node, detail=True)}


class HypervisorStatistics(Resource):
    """``GET /os-hypervisors/statistics``: the nodes' totals."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"hypervisor_statistics": self.service.statistics(self.ctx(req))}


def _zone_view(zone: dict[str, Any], *, detail: bool) -> dict[str, Any]:
    hosts = None
    if detail:
        hosts = {
            host: {
                binary: {
                    "available": service["up"],
                    "active": not service["disabled"],
                    "updated_at": db_time(service["updated_at"]),
                }
                for binary, service in services.items()
            }
            for host, services in zone["hosts"].items()
        }
    return {"zoneName": zone["name"], "zoneState": {"available": zone["available"]}, "hosts": hosts}


class Zones(Resource):
    """``GET /os-availability-zone`` (and ``/detail``, for admins): the availability zones."""

    def __init__(self, service: Any, links: Any, *, detail: bool) -> None:
        super().__init__(service, links)
        self.detail = detail

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        zones = self.service.zones(self.ctx(req), detail=self.detail)
        resp.media = {"availabilityZoneInfo": [_zone_view(z, detail=self.detail) for z in zones]}
