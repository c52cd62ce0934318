"""Fuzz every compute route: never a 5xx, and every 4xx in Nova's error shape.

The routes come from :func:`nimbus.api.compute.routes.routes`, so a new
route is fuzzed without touching this file.  hypothesis drives the whole
app (every service, as ``nimbus up`` builds it) with every method, path
parameters that are real ids (a flavor, a key pair, a server, a server
group, the admin's project) or junk, random query strings, microversion
headers and bodies that are random JSON, near-valid documents or bytes,
with the admin's token or a member's.  Runs are derandomized and bounded.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlencode

import falcon.testing
import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, Phase, given, settings

from nimbus.api.app import Links
from nimbus.api.compute import routes
from tests.functional.api._fuzz import JUNK_SEGMENTS, PRINTABLE, describe, error_document

pytestmark = pytest.mark.slow

MOUNT = "/compute"
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD")
NOVA_FAULTS = {
    "badRequest",
    "unauthorized",
    "forbidden",
    "itemNotFound",
    "badMethod",
    "notAcceptable",
    "conflictingRequest",
    "overLimit",
    "badMediaType",
    "notImplemented",
}
SETTINGS = settings(
    max_examples=300,
    derandomize=True,
    deadline=None,
    database=None,
    phases=(Phase.explicit, Phase.generate),
    suppress_health_check=list(HealthCheck),
    print_blob=False,
)


def _templates() -> list[str]:
    stand_in: Any = object()
    table = routes.routes(stand_in, stand_in, stand_in, stand_in, stand_in, stand_in,
                          Links(None, MOUNT))  # fmt: skip
    return [template for template, _ in table]


TEMPLATES = _templates()
_FIELD = re.compile(r"\{(\w+)\}")

JSON_LEAF = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.floats(allow_nan=False),
    st.text(alphabet=PRINTABLE, max_size=40),
    st.sampled_from(["", " ", "latest", "SOFT", "HARD", "anti-affinity", "1.2.3.4", "::1"]),
)
JSON = st.recursive(
    JSON_LEAF,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(alphabet=PRINTABLE, max_size=20), inner, max_size=5)
    ),
    max_leaves=12,
)
KEYS = st.sampled_from(
    [
        "server", "flavor", "keypair", "quota_set", "server_group", "extra_specs", "metadata",
        "meta", "os-start", "os-stop", "reboot", "pause", "unpause", "suspend", "resume",
        "lock", "unlock", "rebuild", "createImage", "createBackup", "os-getConsoleOutput",
        "addTenantAccess", "removeTenantAccess", "addSecurityGroup", "removeSecurityGroup",
        "forceDelete", "host", "binary", "disabled_reason", "name", "imageRef", "flavorRef",
        "ram", "vcpus", "disk", "id", "public_key", "policies", "min_count", "max_count",
        "os:scheduler_hints", "group", "type", "length", "rotation", "backup_type", "tenant",
    ]
)  # fmt: skip
NEAR_VALID = st.dictionaries(KEYS, st.one_of(JSON, st.dictionaries(KEYS, JSON, max_size=6)),
                             min_size=1, max_size=3)  # fmt: skip
BODIES = st.one_of(
    st.none(),
    NEAR_VALID.map(lambda doc: json.dumps(doc).encode()),
    JSON.map(lambda doc: json.dumps(doc).encode()),
    st.binary(max_size=80),
)
VERSIONS = st.one_of(
    st.none(),
    st.sampled_from(
        [
            "compute 2.1",
            "compute latest",
            "compute 2.999",
            "compute 2.a",
            "volume 3.0",
            "compute",
            "compute 1.0",
            "COMPUTE 2.1",
        ]
    ),  # fmt: skip
)


@pytest.fixture
def ids(identity: Any, client: falcon.testing.TestClient) -> dict[str, str]:
    """Real things for the path parameters: a flavor, key pair, server, group, project."""

    def post(path: str, body: dict[str, Any]) -> Any:
        result = client.simulate_post(
            MOUNT + path, json=body, headers={"X-Auth-Token": identity.admin_token}
        )
        assert result.status_code in (200, 202), result.text
        return result.json

    flavor = post("/v2.1/flavors", {"flavor": {"name": "f", "ram": 64, "vcpus": 1, "disk": 0}})
    post("/v2.1/os-keypairs", {"keypair": {"name": "k"}})
    group = post("/v2.1/os-server-groups",
                 {"server_group": {"name": "g", "policies": ["affinity"]}})  # fmt: skip
    image = client.simulate_post(
        "/image/v2/images",
        json={"name": "i", "disk_format": "raw", "container_format": "bare"},
        headers={"X-Auth-Token": identity.admin_token},
    ).json
    client.simulate_put(
        f"/image/v2/images/{image['id']}/file",
        body=b"\0" * 512,
        headers={"X-Auth-Token": identity.admin_token, "Content-Type": "application/octet-stream"},
    )
    server = post("/v2.1/servers", {"server": {"name": "s", "imageRef": image["id"],
                                               "flavorRef": flavor["flavor"]["id"]}})  # fmt: skip
    project = identity.request("GET", "/auth/projects").json["projects"][0]["id"]
    return {
        "flavor_id": flavor["flavor"]["id"],
        "keypair_name": "k",
        "server_id": server["server"]["id"],
        "group_id": group["server_group"]["id"],
        "project_id": project,
        "key": "hw:cpu_policy",
        "request_id": "req-00000000-0000-0000-0000-000000000000",
        "node_id": "1",
        "name": "enable",
    }


def _segment(real: str) -> st.SearchStrategy[str]:
    return st.one_of(
        st.just(real),
        st.sampled_from(JUNK_SEGMENTS),
        st.text(alphabet=PRINTABLE, min_size=1, max_size=30).map(lambda t: quote(t, safe="")),
        st.text(min_size=200, max_size=300, alphabet="ab").map(str),
    )


@st.composite
def requests(draw: Callable[..., Any], ids: dict[str, str]) -> tuple[str, str, str, dict, Any]:
    template = draw(st.sampled_from(TEMPLATES))
    path = _FIELD.sub(lambda m: draw(_segment(ids.get(m.group(1), "x"))), template)
    method = draw(st.sampled_from(METHODS))
    query = urlencode(
        draw(
            st.lists(
                st.tuples(
                    st.sampled_from(
                        [
                            "limit",
                            "marker",
                            "name",
                            "status",
                            "minRam",
                            "minDisk",
                            "is_public",
                            "sort_key",
                            "sort_dir",
                            "all_tenants",
                            "changes-since",
                            "host",
                            "image",
                            "flavor",
                            "deleted",
                        ]
                    ),
                    st.one_of(
                        st.sampled_from(
                            ["0", "-1", "1", "abc", "", "none", "ACTIVE", "2026-13-40", "[", "(?P<"]
                        ),
                        st.text(alphabet=PRINTABLE, max_size=20),
                    ),
                ),  # fmt: skip
                max_size=3,
            )
        )
    )
    headers = {"Content-Type": draw(st.sampled_from(["application/json", "text/plain", ""]))}
    version = draw(VERSIONS)
    if version is not None:
        headers["OpenStack-API-Version"] = version
    body = draw(BODIES) if method in ("POST", "PUT", "PATCH") else None
    return method, path, query, headers, body


def test_no_route_answers_5xx_and_errors_are_novas(
    client: falcon.testing.TestClient,
    identity: Any,
    make_member: Any,
    ids: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    member = make_member()
    tokens = [identity.admin_token, member.token]

    @SETTINGS
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        method, path, query, headers, body = data.draw(requests(ids))
        headers["X-Auth-Token"] = data.draw(st.sampled_from(tokens))
        result = client.simulate_request(
            method, MOUNT + path, query_string=query, headers=headers, body=body
        )
        request = describe(method, MOUNT + path, query, headers, body)
        document = error_document(result, method, request, caplog)
        if document is not None and method != "HEAD":
            (fault,) = document.keys()
            assert fault in NOVA_FAULTS, (fault, request)
            assert document[fault]["code"] == result.status_code, request
            assert document[fault]["message"], request

    run()
