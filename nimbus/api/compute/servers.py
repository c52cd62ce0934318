"""``/servers``: servers, their actions, metadata and history (Nova v2.1)."""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
from typing import Any

import falcon

from nimbus import exception
from nimbus.api import hooks
from nimbus.api.compute.base import Resource, db_time, links_for
from nimbus.api.resource import bool_value
from nimbus.common.validation import validate as validate_value
from nimbus.compute.servers import ACTIONS, CreateRequest, ServerQuery

_NAME = {"type": "string", "minLength": 1, "maxLength": 255, "pattern": r"^(?!\s*$).+"}
_METADATA = {
    "type": "object",
    "patternProperties": {
        r"^[^\x00-\x1f]{1,255}$": {"type": "string", "maxLength": 255},
    },
    "additionalProperties": False,
}
_COUNT = {"type": ["integer", "string"], "pattern": r"^[0-9]+$", "minimum": 1}
CREATE = {
    "type": "object",
    "properties": {
        "name": _NAME,
        "imageRef": {"type": "string", "maxLength": 255},
        "flavorRef": {"type": ["string", "integer"], "minLength": 1},
        "adminPass": {"type": "string"},
        "metadata": _METADATA,
        "networks": {
            "oneOf": [
                {"type": "string", "enum": ["auto", "none"]},
                {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "uuid": {"type": "string"},
                            "port": {"type": ["string", "null"]},
                            "fixed_ip": {"type": "string"},
                            "tag": {"type": "string"},
                        },
                        "additionalProperties": False,
                    },
                },
            ]
        },
        "OS-DCF:diskConfig": {"type": "string", "enum": ["AUTO", "MANUAL"]},
        "accessIPv4": {"type": "string", "format": "ipv4"},
        "accessIPv6": {"type": "string", "format": "ipv6"},
        "personality": {"type": "array"},
        "key_name": {"type": "string", "minLength": 1, "maxLength": 255},
        "availability_zone": {"type": "string", "minLength": 1, "maxLength": 255},
        "block_device_mapping": {"type": "array"},
        "block_device_mapping_v2": {"type": "array"},
        "config_drive": {"type": ["boolean", "string", "null"]},
        "user_data": {"type": "string"},
        "security_groups": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"name": {"type": "string"}},
                "additionalProperties": False,
            },
        },
        "min_count": _COUNT,
        "max_count": _COUNT,
        "return_reservation_id": {"type": ["boolean", "string"]},
    },
    "required": ["name", "flavorRef"],
    "additionalProperties": False,
}
CREATE_BODY = {
    "type": "object",
    "properties": {
        "server": {"type": "object"},
        "os:scheduler_hints": {"type": "object"},
        "OS-SCH-HNT:scheduler_hints": {"type": "object"},
    },
    "required": ["server"],
    "additionalProperties": False,
}
UPDATE = {
    "type": "object",
    "properties": {
        "name": _NAME,
        "accessIPv4": {"type": "string", "format": "ipv4"},
        "accessIPv6": {"type": "string", "format": "ipv6"},
        "OS-DCF:diskConfig": {"type": "string", "enum": ["AUTO", "MANUAL"]},
    },
    "additionalProperties": False,
}
METADATA_BODY = {
    "type": "object",
    "properties": {"metadata": _METADATA},
    "required": ["metadata"],
    "additionalProperties": False,
}
META_ITEM = {
    "type": "object",
    "properties": {"meta": {**_METADATA, "minProperties": 1, "maxProperties": 1}},
    "required": ["meta"],
    "additionalProperties": False,
}
_NULL_OR_EMPTY = {"type": ["null", "object"], "maxProperties": 0}
ACTION = {
    "type": "object",
    "properties": {
        "os-start": _NULL_OR_EMPTY,
        "os-stop": _NULL_OR_EMPTY,
        "pause": _NULL_OR_EMPTY,
        "unpause": _NULL_OR_EMPTY,
        "suspend": _NULL_OR_EMPTY,
        "resume": _NULL_OR_EMPTY,
        "lock": {"type": ["null", "object"]},
        "unlock": _NULL_OR_EMPTY,
        "reboot": {
            "type": "object",
            "properties": {
                "type": {"type": "string", "pattern": "^([Hh][Aa][Rr][Dd]|[Ss][Oo][Ff][Tt])$"}
            },
            "required": ["type"],
            "additionalProperties": False,
        },
        "os-getConsoleOutput": {
            "type": "object",
            "properties": {
                "length": {"type": ["integer", "string", "null"], "pattern": r"^-?[0-9]+$"}
            },
            "additionalProperties": False,
        },
        "forceDelete": {"type": "null"},
        "rebuild": {
            "type": "object",
            "properties": {
                "imageRef": {"type": "string", "minLength": 1, "maxLength": 255},
                "name": _NAME,
                "metadata": _METADATA,
                "adminPass": {"type": "string"},
                "accessIPv4": {"type": "string"},
                "accessIPv6": {"type": "string"},
                "OS-DCF:diskConfig": {"type": "string", "enum": ["AUTO", "MANUAL"]},
                "personality": {"type": "array"},
                "preserve_ephemeral": {"type": "boolean"},
            },
            "required": ["imageRef"],
            "additionalProperties": False,
        },
        "createImage": {
            "type": "object",
            "properties": {"name": _NAME, "metadata": _METADATA},
            "required": ["name"],
            "additionalProperties": False,
        },
    },
    "minProperties": 1,
    "maxProperties": 1,
    "additionalProperties": False,
}


def _time(value: datetime.datetime | None) -> str | None:
    """Return a time as Nova shows a server's ``created`` (``2026-12-08T00:40:35Z``)."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(datetime.UTC).replace(tzinfo=None)
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def _host_id(server: dict[str, Any]) -> str:
    """Return Nova's ``hostId``: the host, hashed with the project, so projects cannot compare."""
    if not server["host"]:
        return ""
    return hashlib.sha224((server["project_id"] + server["host"]).encode()).hexdigest()


def _update_values(given: dict[str, Any]) -> dict[str, Any]:
    """Return the server service's changes for a validated ``PUT /servers/{id}`` body."""
    _check_ips(given)
    names = {"name": "name", "accessIPv4": "access_ip_v4", "accessIPv6": "access_ip_v6"}
    return {names[k]: (v if k == "name" else _normal_ip(v)) for k, v in given.items() if k in names}


def _check_ips(given: dict[str, Any]) -> None:
    for key, version in (("accessIPv4", 4), ("accessIPv6", 6)):
        if key in given and not _is_ip(given[key], version):
            raise exception.ValidationError(field=key, reason=f"is not an IPv{version} address")


def _normal_ip(value: str | None) -> str | None:
    """Return an address as Nova stores it (IPv6 compressed)."""
    return None if not value else str(ipaddress.ip_address(value))


def _is_ip(value: str, version: int) -> bool:
    try:
        return ipaddress.ip_address(value).version == version
    except ValueError:
        return False


def _create_request(document: dict[str, Any]) -> CreateRequest:
    server = document["server"]
    hints = document.get("os:scheduler_hints") or document.get("OS-SCH-HNT:scheduler_hints") or {}
    min_count = int(server.get("min_count", 1))
    max_count = int(server.get("max_count", min_count))
    if min_count > max_count:
        raise exception.BadRequest(reason="min_count must be <= max_count")
    config_drive = server.get("config_drive")
    if not server.get("imageRef") and not server.get("block_device_mapping_v2"):
        raise exception.BadRequest(reason="Missing imageRef attribute")
    _check_ips(server)
    return CreateRequest(
        name=server["name"],
        flavor_ref=str(server["flavorRef"]).rsplit("/", 1)[-1],
        image_ref=server.get("imageRef") or None,
        min_count=min_count,
        max_count=max_count,
        key_name=server.get("key_name"),
        availability_zone=server.get("availability_zone"),
        metadata=dict(server.get("metadata") or {}),
        user_data=server.get("user_data"),
        networks=server.get("networks"),
        security_groups=tuple(g.get("name", "") for g in server.get("security_groups") or []),
        scheduler_hints=dict(hints),
        access_ip_v4=_normal_ip(server.get("accessIPv4")),
        access_ip_v6=_normal_ip(server.get("accessIPv6")),
        config_drive=bool_value(str(config_drive)) if config_drive not in (None, "") else False,
    )


class _Servers(Resource):
    collection = "/servers"

    def admin(self, req: falcon.Request) -> bool:
        return bool(self.service.enforcer.check(self.ctx(req), "admin_required"))

    def view(self, req: falcon.Request, server: dict[str, Any]) -> dict[str, Any]:
        """Return a server as Nova shows it (``GET /servers/{id}``, ``/servers/detail``)."""
        sid = server["id"]
        image: Any = ""
        if server["image_ref"]:
            image = {
                "id": server["image_ref"],
                "links": [links_for(self, req, f"/images/{server['image_ref']}")[1]],
            }
        view: dict[str, Any] = {
            "id": sid,
            "name": server["name"],
            "status": server["status"],
            "tenant_id": server["project_id"],
            "user_id": server["user_id"],
            "metadata": server["metadata"],
            "hostId": _host_id(server),
            "image": image,
            "flavor": {
                "id": server["flavor_id"],
                "links": [links_for(self, req, f"/flavors/{server['flavor_id']}")[1]],
            },
            "created": _time(server["created_at"]),
            "updated": _time(server["updated_at"]),
            "addresses": {},
            "accessIPv4": server["access_ip_v4"],
            "accessIPv6": server["access_ip_v6"],
            "links": links_for(self, req, f"/servers/{sid}"),
            "OS-DCF:diskConfig": "MANUAL",
            "OS-EXT-AZ:availability_zone": server["availability_zone"] or "",
            "config_drive": server["config_drive"],
            "key_name": server["key_name"],
            "OS-SRV-USG:launched_at": db_time(server["launched_at"]),
            "OS-SRV-USG:terminated_at": db_time(server["terminated_at"]),
            "security_groups": [{"name": "default"}],
            "OS-EXT-STS:task_state": server["task_state"],
            "OS-EXT-STS:vm_state": server["vm_state"],
            "OS-EXT-STS:power_state": server["power_state"],
            "os-extended-volumes:volumes_attached": [],
        }
        if server["status"] in ("BUILD", "ACTIVE"):
            view["progress"] = 0
        if self.admin(req):
            view["OS-EXT-SRV-ATTR:host"] = server["host"]
            view["OS-EXT-SRV-ATTR:hypervisor_hostname"] = server["node"]
            view["OS-EXT-SRV-ATTR:instance_name"] = f"instance-{sid[:8]}"
        if server["fault"] is not None:
            fault = server["fault"]
            view["fault"] = {
                "code": fault["code"],
                "message": fault["message"],
                "created": _time(fault["created"]),
            }
        return view

    def brief(self, req: falcon.Request, server: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": server["id"],
            "name": server["name"],
            "links": links_for(self, req, f"/servers/{server['id']}"),
        }

    def query(self, req: falcon.Request) -> ServerQuery:
        since = req.get_param("changes-since", default=None) or req.get_param(
            "changes_since", default=None
        )
        changes_since = None
        if since:
            try:
                changes_since = datetime.datetime.fromisoformat(since.replace("Z", "+00:00"))
            except ValueError:
                raise exception.BadRequest(
                    reason=f"Invalid changes-since value [{since}]"
                ) from None
            if changes_since.tzinfo is not None:
                changes_since = changes_since.astimezone(datetime.UTC).replace(tzinfo=None)
        all_tenants = req.get_param("all_tenants", default=None)
        deleted = req.get_param("deleted", default=None)
        return ServerQuery(
            name=req.get_param("name", default=None),
            status=req.get_param("status", default=None),
            image=req.get_param("image", default=None),
            flavor=req.get_param("flavor", default=None),
            host=req.get_param("host", default=None),
            changes_since=changes_since,
            all_tenants=all_tenants is not None and (all_tenants == "" or bool_value(all_tenants)),
            project_id=req.get_param("project_id", default=None)
            or req.get_param("tenant_id", default=None),
            deleted=deleted is not None and bool_value(deleted),
            reservation_id=req.get_param("reservation_id", default=None),
            limit=self.pages.limit(req),
            marker=req.get_param("marker", default=None) or None,
        )

    def page(self, req: falcon.Request, *, detail: bool) -> dict[str, Any]:
        if req.get_param("limit", default=None) == "0":
            return {"servers": []}  # Nova answers limit=0 with an empty page
        query = self.query(req)
        servers = self.service.list(self.ctx(req), query, detail=detail)
        render = self.view if detail else self.brief
        body: dict[str, Any] = {"servers": [render(req, s) for s in servers]}
        if query.limit is not None and servers and len(servers) >= query.limit:
            path = "/v2.1/servers/detail" if detail else "/v2.1/servers"
            next_url = self.pages.next_url(
                self.url(req, path), req, [{"id": servers[-1]["id"]}], query.limit
            )
            body["servers_links"] = [{"rel": "next", "href": next_url}]
        return body


class ServerCollection(_Servers):
    """``GET /servers`` lists (ids, names, links); ``POST`` creates servers."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = self.page(req, detail=False)

    @falcon.before(hooks.validate(CREATE_BODY))
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        document = self.body(req)
        validate_value(CREATE, document["server"], "server")
        created = self.service.create(self.ctx(req), _create_request(document))
        resp.status = falcon.HTTP_202
        resp.media = self.created_view(req, document, created)

    def created_view(
        self, req: falcon.Request, document: dict[str, Any], created: list[dict[str, Any]]
    ) -> dict[str, Any]:
        if bool_value(str(document["server"].get("return_reservation_id", "false"))):
            return {"reservation_id": created[0]["reservation_id"]}
        first = created[0]
        resp_location = links_for(self, req, f"/servers/{first['id']}")
        return {
            "server": {
                "id": first["id"],
                "links": resp_location,
                "OS-DCF:diskConfig": "MANUAL",
                "security_groups": [{"name": "default"}],
            }
        }


class ServerDetail(_Servers):
    """``GET /servers/detail``: servers in full."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = self.page(req, detail=True)


class ServerItem(_Servers):
    """``GET /servers/{id}`` shows; ``PUT`` renames; ``DELETE`` deletes."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, server_id: str) -> None:
        resp.media = {"server": self.view(req, self.service.get(self.ctx(req), server_id))}

    @falcon.before(hooks.validate(UPDATE, key="server"))
    def on_put(self, req: falcon.Request, resp: falcon.Response, server_id: str) -> None:
        changes = _update_values(self.body(req)["server"])
        server = self.service.update(self.ctx(req), server_id, changes)
        resp.media = {"server": self.view(req, server)}

    def on_delete(self, req: falcon.Request, resp: falcon.Response, server_id: str) -> None:
        self.service.delete(self.ctx(req), server_id)
        resp.status = falcon.HTTP_204


class ServerAction(_Servers):
    """``POST /servers/{id}/action``: start, stop, reboot, pause, suspend, lock, console."""

    @falcon.before(hooks.validate(ACTION))
    def on_post(self, req: falcon.Request, resp: falcon.Response, server_id: str) -> None:
        ((name, value),) = self.body(req).items()
        resp.status = falcon.HTTP_202
        result = self.run(req, server_id, name, value)
        if req.context.get("location"):
            resp.location = req.context.location
        if result is not None:
            resp.status = str(req.context.get("status") or falcon.HTTP_200)
            resp.media = result

    def run(self, req: falcon.Request, server_id: str, name: str, value: Any) -> Any:
        ctx = self.ctx(req)
        if name == "reboot":
            self.service.act(ctx, server_id, f"reboot-{value['type'].upper()}")
        elif name in ("lock", "unlock"):
            self.service.lock(ctx, server_id, locked=name == "lock")
        elif name == "os-getConsoleOutput":
            length = value.get("length")
            lines = None if length is None else int(length)
            if lines is not None and lines < -1:
                raise exception.BadRequest(reason="length must be -1 or more")
            text = self.service.console_output(ctx, server_id, None if lines == -1 else lines)
            return {"output": text}
        elif name == "forceDelete":
            self.service.delete(ctx, server_id, force=True)
        elif name == "rebuild":
            changes = _update_values(value)
            if "metadata" in value:
                changes["metadata"] = dict(value["metadata"])
            server = self.service.rebuild(ctx, server_id, value["imageRef"], changes)
            view = self.view(req, server)
            if "adminPass" in value:
                view["adminPass"] = value["adminPass"]
            req.context.status = falcon.HTTP_202
            return {"server": view}
        elif name == "createImage":
            image_id = self.service.snapshot(
                ctx, server_id, value["name"], dict(value.get("metadata") or {})
            )
            req.context.location = links_for(self, req, f"/images/{image_id}")[1]["href"]
        elif name in ACTIONS:
            self.service.act(ctx, server_id, name)
        return None


class ServerMetadata(_Servers):
    """``/servers/{id}/metadata``: list (GET), add (POST), replace all (PUT)."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, server_id: str) -> None:
        resp.media = {"metadata": self.service.metadata(self.ctx(req), server_id)}

    @falcon.before(hooks.validate(METADATA_BODY))
    def on_post(self, req: falcon.Request, resp: falcon.Response, server_id: str) -> None:
        items = self.body(req)["metadata"]
        done = self.service.set_metadata(self.ctx(req), server_id, items, replace=False)
        resp.media = {"metadata": done}

    @falcon.before(hooks.validate(METADATA_BODY))
    def on_put(self, req: falcon.Request, resp: falcon.Response, server_id: str) -> None:
        items = self.body(req)["metadata"]
        done = self.service.set_metadata(self.ctx(req), server_id, items, replace=True)
        resp.media = {"metadata": done}


class ServerMetadataItem(_Servers):
    """``/servers/{id}/metadata/{key}``: show, set (PUT) and delete one item."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, server_id: str, key: str) -> None:
        items = self.service.metadata(self.ctx(req), server_id)
        if key not in items:
            raise exception.NotFound("Metadata item was not found", kind="metadata", id=key)
        resp.media = {"meta": {key: items[key]}}

    @falcon.before(hooks.validate(META_ITEM))
    def on_put(self, req: falcon.Request, resp: falcon.Response, server_id: str, key: str) -> None:
        meta = self.body(req)["meta"]
        if key not in meta:
            raise exception.BadRequest(reason="Request body and URI mismatch")
        self.service.set_metadata(self.ctx(req), server_id, meta, replace=False)
        resp.media = {"meta": meta}

    def on_delete(
        self, req: falcon.Request, resp: falcon.Response, server_id: str, key: str
    ) -> None:
        self.service.delete_metadata(self.ctx(req), server_id, key)
        resp.status = falcon.HTTP_204


def _action_view(action: dict[str, Any]) -> dict[str, Any]:
    view = {k: v for k, v in action.items() if k != "events"}
    view["start_time"] = db_time(action["start_time"])
    if "events" in action:
        view["events"] = [
            {
                "event": e["event"],
                "start_time": db_time(e["start_time"]),
                "finish_time": db_time(e["finish_time"]),
                "result": e["result"],
                "traceback": e["traceback"],
            }
            for e in action["events"]
        ]
    return view


class InstanceActions(_Servers):
    """``GET /servers/{id}/os-instance-actions``: what was done to a server."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, server_id: str) -> None:
        actions = self.service.actions(self.ctx(req), server_id)
        resp.media = {"instanceActions": [_action_view(a) for a in actions]}


class InstanceAction(_Servers):
    """``GET /servers/{id}/os-instance-actions/{request_id}``: one action and its events."""

    def on_get(
        self, req: falcon.Request, resp: falcon.Response, server_id: str, request_id: str
    ) -> None:
        action = self.service.action(self.ctx(req), server_id, request_id)
        resp.media = {"instanceAction": _action_view(action)}
