"""python-glanceclient, its library and its ``glance`` shell, against a real ``nimbus up``.

glanceclient sends ``Accept: */*`` and reads an error's body by its type:
JSON whose top-level values are objects holding a ``message``, or an HTML
page whose lines it joins.  Glance answers it webob's HTML page; a flat
JSON body made it crash (``'str' object has no attribute 'get'``) instead
of raising its ``HTTPNotFound``.  It also reads ``/versions`` to decide
which calls the server has (tasks at 2.12, the cache at 2.14).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import glanceclient
import pytest
from glanceclient import exc
from glanceclient.v2.client import Client
from keystoneauth1 import loading, session
from openstack import exceptions

from nimbus.testing.server import Server
from tests.functional._cloud import fast_nimbus_up

pytestmark = pytest.mark.slow

MISSING = "00000000-0000-0000-0000-000000000000"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with fast_nimbus_up(tmp_path_factory.mktemp("glance-client")) as running:
        yield running


@pytest.fixture(scope="module")
def auth_session(server: Server) -> session.Session:
    env = server.openrc()
    auth = loading.get_plugin_loader("password").load_from_options(
        auth_url=env["OS_AUTH_URL"],
        username=env["OS_USERNAME"],
        password=env["OS_PASSWORD"],
        project_name=env["OS_PROJECT_NAME"],
        user_domain_name=env["OS_USER_DOMAIN_NAME"],
        project_domain_name=env["OS_PROJECT_DOMAIN_NAME"],
    )
    return session.Session(auth=auth)


@pytest.fixture(scope="module")
def glance(auth_session: session.Session) -> Client:
    return glanceclient.Client("2", session=auth_session)


def test_a_missing_image_is_glanceclients_not_found(glance: Client) -> None:
    with pytest.raises(exc.HTTPNotFound) as raised:
        glance.images.get(MISSING)

    assert str(raised.value) == f"HTTP 404 Not Found: No image found with ID {MISSING}"


def test_a_bad_filter_is_glanceclients_bad_request(glance: Client) -> None:
    with pytest.raises(exc.HTTPBadRequest) as raised:
        list(glance.images.list(filters={"size_min": "big"}))

    assert "size_min" in raised.value.details, raised.value.details


def test_a_bad_member_status_is_glanceclients_bad_request(
    glance: Client,
) -> None:
    image = glance.images.create(name="members", disk_format="raw", container_format="bare")

    with pytest.raises(exc.HTTPBadRequest) as raised:
        glance.image_members.update(image.id, uuid.uuid4().hex, "bogus")

    assert "status" in raised.value.details, raised.value.details


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v2/nothing"),
        ("GET", "/v2/images/"),
        ("DELETE", "/v2/images/"),
        ("GET", f"/v2/images/{MISSING}/"),
    ],
)
def test_a_path_no_route_matches_is_not_found(glance: Client, method: str, path: str) -> None:
    """Glance's routes match exactly: a trailing slash finds nothing, and a 404 says so."""
    with pytest.raises(exc.HTTPNotFound) as raised:
        glance.http_client.request(path, method)

    assert raised.value.details == "404 Not Found: The resource could not be found."


def test_the_client_follows_the_versions_nimbus_lists(glance: Client) -> None:
    """glanceclient asks ``/versions`` first: 2.12 (tasks) is listed, 2.14 (cache) is not.

    nimbus up enables two stores, so it lists the multi-store versions it
    serves (2.8 to 2.12) and no cache version.
    """
    image = glance.images.create(name="tasks", disk_format="raw", container_format="bare")

    assert list(glance.images.get_associated_image_tasks(image.id)["tasks"]) == []
    with pytest.raises(exc.HTTPNotImplemented):
        glance.cache.list()


@pytest.mark.parametrize(
    ("accept", "details"),
    [
        # What the SDK's resources ask for.
        ("application/json", f"No image found with ID {MISSING}"),
        # What a raw call of its session sends.
        ("*/*", f"404 Not Found: No image found with ID {MISSING}"),
    ],
)
def test_openstacksdk_reports_the_message(
    auth_session: session.Session, accept: str, details: str
) -> None:
    """The SDK reads a JSON message (the page's lines for HTML) in ``raise_from_response``."""
    response = auth_session.get(
        f"/v2/images/{MISSING}",
        endpoint_filter={"service_type": "image", "interface": "public"},
        headers={"Accept": accept},
        raise_exc=False,
    )

    with pytest.raises(exceptions.NotFoundException) as raised:
        exceptions.raise_from_response(response)

    assert raised.value.details == details


def _glance_shell() -> str:
    found = shutil.which("glance", path=str(Path(sys.executable).parent)) or shutil.which("glance")
    if found is None:
        pytest.fail("python-glanceclient's glance script is not installed")
    return found


def _run(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env.update(server.openrc())
    return subprocess.run(
        [_glance_shell(), *args], env=env, capture_output=True, text=True, timeout=120
    )


def test_the_glance_shell(server: Server, tmp_path: Path) -> None:
    data = tmp_path / "data.raw"
    data.write_bytes(os.urandom(3 * 1024 * 1024 + 17))

    created = _run(
        server,
        "image-create",
        "--file",
        str(data),
        "--disk-format",
        "raw",
        "--container-format",
        "bare",
        "--name",
        "shell-img",
    )
    assert created.returncode == 0, created.stderr
    assert "active" in created.stdout and str(data.stat().st_size) in created.stdout

    listed = _run(server, "image-list")
    assert listed.returncode == 0, listed.stderr
    assert "shell-img" in listed.stdout

    missing = _run(server, "image-show", MISSING)
    assert missing.returncode == 1
    assert missing.stderr.strip() == f"HTTP 404 Not Found: No image found with ID {MISSING}"
