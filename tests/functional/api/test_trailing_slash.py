"""A trailing slash in the all-in-one app: dropped for identity, not found for images.

Keystone drops it before routing (``URLNormalizingMiddleware``); Glance's
routes match paths exactly, so ``/v2/images/`` finds no route.  Each
service's root answers with or without one.
"""

from __future__ import annotations

import falcon.testing
import pytest

from tests.functional.api.conftest import Identity
from tests.functional.api.image.conftest import assert_glance_error


def test_identity_drops_a_trailing_slash(identity: Identity) -> None:
    plain = identity.request("GET", "/users")
    slashed = identity.request("GET", "/users/")

    assert slashed.status_code == 200, slashed.text
    assert slashed.json["users"] == plain.json["users"]


@pytest.mark.parametrize("path", ["/v2/images/", "/v2/schemas/image/"])
def test_an_image_path_with_a_trailing_slash_is_not_found(
    client: falcon.testing.TestClient, identity: Identity, path: str
) -> None:
    for method in ("GET", "DELETE"):
        result = client.simulate_request(
            method, "/image" + path, headers={"X-Auth-Token": identity.admin_token}
        )
        assert assert_glance_error(result, 404) == "The resource could not be found."


@pytest.mark.parametrize(
    ("path", "status"),
    [("/", 200), ("/identity/", 300), ("/identity", 300), ("/image/", 300), ("/image", 300)],
)
def test_a_root_answers_with_a_slash(
    client: falcon.testing.TestClient, path: str, status: int
) -> None:
    assert client.simulate_get(path).status_code == status
