"""``/os-keypairs``: users' SSH public keys (Nova v2.1)."""

from __future__ import annotations

from typing import Any

import falcon

from nimbus.api import hooks
from nimbus.api.compute.base import Resource, db_time

CREATE = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "public_key": {"type": "string"},
    },
    "required": ["name"],
    "additionalProperties": False,
}


def _shown(pair: dict[str, Any]) -> dict[str, Any]:
    """Return one key pair as ``GET /os-keypairs/{name}`` shows it (Nova's v2.1 view)."""
    return {
        "id": pair["id"],
        "name": pair["name"],
        "user_id": pair["user_id"],
        "public_key": pair["public_key"],
        "fingerprint": pair["fingerprint"],
        "created_at": db_time(pair["created_at"]),
        "updated_at": None,
        "deleted": False,
        "deleted_at": None,
    }


class KeypairCollection(Resource):
    """``GET /os-keypairs`` lists the caller's key pairs; ``POST`` creates or imports one."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        keypairs = self.service.list(self.ctx(req))
        resp.media = {
            "keypairs": [
                {"keypair": {k: pair[k] for k in ("name", "public_key", "fingerprint")}}
                for pair in keypairs
            ]
        }

    @falcon.before(hooks.validate(CREATE, key="keypair"))
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        given = self.body(req)["keypair"]
        pair = self.service.create(self.ctx(req), given["name"], public_key=given.get("public_key"))
        view: dict[str, Any] = {
            k: pair[k] for k in ("name", "public_key", "fingerprint", "user_id")
        }
        if "private_key" in pair:
            view["private_key"] = pair["private_key"]
        # 200 before microversion 2.2, as Nova answers.
        resp.media = {"keypair": view}


class KeypairItem(Resource):
    """``GET /os-keypairs/{name}`` shows one; ``DELETE`` deletes it."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, keypair_name: str) -> None:
        resp.media = {"keypair": _shown(self.service.get(self.ctx(req), keypair_name))}

    def on_delete(self, req: falcon.Request, resp: falcon.Response, keypair_name: str) -> None:
        self.service.delete(self.ctx(req), keypair_name)
        # 202 before microversion 2.2.
        resp.status = falcon.HTTP_202
