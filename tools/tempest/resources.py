"""What the compute tests need in the cloud before they run: an image and two flavors.

tempest's server tests boot ``[compute] image_ref`` with ``flavor_ref``
(and the ``_alt`` ones for rebuilds and resizes).  :func:`compute_refs`
makes them through the cloud's own APIs, as an operator would: two small
public raw images and the flavors ``42`` (``m1.nano``) and ``84``
(``m1.micro``), reusing those a former run made.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from tools.tempest.config import Admin, uri_v3

__all__ = ["compute_refs"]

FLAVORS = (("42", "m1.nano", 128), ("84", "m1.micro", 256))
IMAGES = ("tempest-image", "tempest-image-alt")
_DISK = b"\0" * 65536


def _call(method: str, url: str, token: str | None, body: Any = None,
          content_type: str = "application/json") -> tuple[int, Any, Any]:  # fmt: skip
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if token:
        request.add_header("X-Auth-Token", token)
    if data is not None:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:  # noqa: S310
            raw = answer.read()
            return answer.status, answer.headers, json.loads(raw) if raw else None
    except urllib.error.HTTPError as ex:
        raw = ex.read()
        try:
            return ex.code, ex.headers, json.loads(raw) if raw else None
        except ValueError:
            return ex.code, ex.headers, None


def _endpoint(catalog: list[dict[str, Any]], kind: str) -> str:
    for entry in catalog:
        if entry.get("type") == kind:
            for endpoint in entry.get("endpoints", []):
                if endpoint.get("interface") == "public":
                    return str(endpoint["url"]).rstrip("/")
    raise OSError(f"no public {kind} endpoint in the catalog")


def compute_refs(auth_url: str, admin: Admin) -> dict[str, str]:
    """Make (or find) the image and flavors; return ``[compute]``'s ``*_ref`` values.

    :raises OSError: the cloud refused or did not answer.
    """
    domain = {"name": admin.domain}
    auth = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {"name": admin.username, "password": admin.password, "domain": domain}
                },
            },
            "scope": {"project": {"name": admin.project, "domain": domain}},
        }
    }
    status, headers, body = _call("POST", uri_v3(auth_url) + "/auth/tokens", None, auth)
    if status != 201:
        raise OSError(f"could not get an admin token ({status})")
    token = headers["X-Subject-Token"]
    compute = _endpoint(body["token"]["catalog"], "compute")
    image = _endpoint(body["token"]["catalog"], "image")
    for flavor_id, name, ram in FLAVORS:
        flavor = {"flavor": {"name": name, "id": flavor_id, "ram": ram, "vcpus": 1, "disk": 1}}
        status, _, _ = _call("POST", f"{compute}/flavors", token, flavor)
        if status not in (200, 409):
            raise OSError(f"creating flavor {name} answered {status}")
    refs = {"flavor_ref": FLAVORS[0][0], "flavor_ref_alt": FLAVORS[1][0]}
    _, _, listed = _call("GET", f"{image}/v2/images?visibility=public", token)
    existing = {i["name"]: i["id"] for i in listed["images"] if i.get("status") == "active"}
    for key, name in zip(("image_ref", "image_ref_alt"), IMAGES, strict=True):
        if name not in existing:
            values = {"name": name, "disk_format": "raw", "container_format": "bare",
                      "visibility": "public"}  # fmt: skip
            status, _, made = _call("POST", f"{image}/v2/images", token, values)
            if status != 201:
                raise OSError(f"creating image {name} answered {status}")
            status, _, _ = _call("PUT", f"{image}/v2/images/{made['id']}/file", token, _DISK,
                                 content_type="application/octet-stream")  # fmt: skip
            if status != 204:
                raise OSError(f"uploading image {name} answered {status}")
            existing[name] = made["id"]
        refs[key] = existing[name]
    return refs
