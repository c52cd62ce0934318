"""``/os-quota-sets`` and ``/limits``: compute quotas and what a project uses (Nova v2.1)."""

from __future__ import annotations

from typing import Any

import falcon

from nimbus import exception
from nimbus.api import hooks
from nimbus.api.compute.base import Resource
from nimbus.compute.quotas import RESOURCES

#: The API's name of each quota, where it differs from the option's.
_API_NAMES = {"injected_file_path_length": "injected_file_path_bytes"}
_OPTION_NAMES = {api: option for option, api in _API_NAMES.items()}
#: Network quotas a v2.1 quota set still shows (Nova's before microversion
#: 2.36); the network service keeps its own, so these are Nova's defaults.
_NETWORK_QUOTAS = {
    "floating_ips": 10,
    "fixed_ips": -1,
    "security_groups": 10,
    "security_group_rules": 20,
}
_LIMIT = {"type": ["integer", "string"], "pattern": r"^-?[0-9]+$", "minimum": -1}
UPDATE = {
    "type": "object",
    "properties": {
        **{_API_NAMES.get(name, name): _LIMIT for name in RESOURCES},
        **{name: _LIMIT for name in _NETWORK_QUOTAS},
        "force": {"type": ["boolean", "string"]},
    },
    "additionalProperties": False,
}


def _view(limits: dict[str, Any], project_id: str | None) -> dict[str, Any]:
    view: dict[str, Any] = {} if project_id is None else {"id": project_id}
    for name in RESOURCES:
        view[_API_NAMES.get(name, name)] = limits[name]
    view.update(_NETWORK_QUOTAS)
    return view


def _changes(given: dict[str, Any]) -> tuple[dict[str, int], bool]:
    """Return the limits a validated update sets, by option name, and its ``force``."""
    given = dict(given)
    force = given.pop("force", False)
    if isinstance(force, str):
        force = force.strip().lower() in ("1", "t", "true", "on", "y", "yes")
    changes = {}
    for name, value in given.items():
        if name in _NETWORK_QUOTAS:
            continue  # the network service's business
        number = int(value)
        if number < -1:
            raise exception.ValidationError(field=name, reason="must be -1 or more")
        changes[_OPTION_NAMES.get(name, name)] = number
    return changes, bool(force)


class QuotaSet(Resource):
    """``GET /os-quota-sets/{project}`` shows; ``PUT`` sets (admins); ``DELETE`` resets."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, project_id: str) -> None:
        limits = self.service.show(self.ctx(req), project_id)
        resp.media = {"quota_set": _view(limits, project_id)}

    @falcon.before(hooks.validate(UPDATE, key="quota_set"))
    def on_put(self, req: falcon.Request, resp: falcon.Response, project_id: str) -> None:
        changes, force = _changes(self.body(req)["quota_set"])
        limits = self.service.update(self.ctx(req), project_id, changes, force=force)
        resp.media = {"quota_set": _view(limits, None)}

    def on_delete(self, req: falcon.Request, resp: falcon.Response, project_id: str) -> None:
        self.service.delete(self.ctx(req), project_id)
        resp.status = falcon.HTTP_202


class QuotaDefaults(Resource):
    """``GET /os-quota-sets/{project}/defaults``: the configured defaults."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, project_id: str) -> None:
        limits = self.service.show_defaults(self.ctx(req), project_id)
        resp.media = {"quota_set": _view(limits, project_id)}


class QuotaDetail(Resource):
    """``GET /os-quota-sets/{project}/detail``: limits with what is in use."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, project_id: str) -> None:
        detail = self.service.detail(self.ctx(req), project_id)
        view: dict[str, Any] = {"id": project_id}
        for name in RESOURCES:
            view[_API_NAMES.get(name, name)] = detail[name]
        for name, value in _NETWORK_QUOTAS.items():
            view[name] = {"limit": value, "in_use": 0, "reserved": 0}
        resp.media = {"quota_set": view}


#: ``GET /limits`` keys: (absolute limit name, quota), then (usage name, quota).
_ABSOLUTE = (
    ("maxTotalInstances", "instances"),
    ("maxTotalCores", "cores"),
    ("maxTotalRAMSize", "ram"),
    ("maxServerMeta", "metadata_items"),
    ("maxImageMeta", "metadata_items"),
    ("maxPersonality", "injected_files"),
    ("maxPersonalitySize", "injected_file_content_bytes"),
    ("maxTotalKeypairs", "key_pairs"),
    ("maxServerGroups", "server_groups"),
    ("maxServerGroupMembers", "server_group_members"),
)
_USED = (
    ("totalInstancesUsed", "instances"),
    ("totalCoresUsed", "cores"),
    ("totalRAMUsed", "ram"),
    ("totalServerGroupsUsed", "server_groups"),
)


def _absolute(found: dict[str, Any]) -> dict[str, Any]:
    """Return ``GET /limits``'s absolute part from the quota service's limits and usage."""
    absolute: dict[str, Any] = {key: found["limits"][q] for key, q in _ABSOLUTE}
    absolute.update({key: found["used"][q] for key, q in _USED})
    absolute.update(
        {
            "maxSecurityGroups": _NETWORK_QUOTAS["security_groups"],
            "maxSecurityGroupRules": _NETWORK_QUOTAS["security_group_rules"],
            "maxTotalFloatingIps": _NETWORK_QUOTAS["floating_ips"],
            "totalFloatingIpsUsed": 0,
            "totalSecurityGroupsUsed": 0,
        }
    )
    return absolute


class Limits(Resource):
    """``GET /limits``: the caller's project's absolute limits and usage."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        found = self.service.absolute_limits(self.ctx(req))
        resp.media = {"limits": {"rate": [], "absolute": _absolute(found)}}
