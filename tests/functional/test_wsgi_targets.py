"""The gunicorn targets build what they serve, and nothing else."""

from __future__ import annotations

import os
import shutil

import falcon.testing
import pytest
from oslo_config import cfg

import nimbus.wsgi
from nimbus import exception
from nimbus.cmd import up
from nimbus.descriptor import Cloud
from nimbus.testing.server import password_auth


@pytest.fixture
def prepared(conf: cfg.ConfigOpts) -> cfg.ConfigOpts:
    """A config whose state ``nimbus up`` has set up (schema, keys, admin, catalog)."""
    up.prepare(conf, "secret")
    return conf


def test_identity_alone_builds_no_image_store_and_opens_no_bus(prepared: cfg.ConfigOpts) -> None:
    datadir = prepared.image_file_store.datadir
    shutil.rmtree(datadir)

    cloud = nimbus.wsgi.build_services(prepared, ["identity"])
    try:
        app = nimbus.wsgi.build_app(cloud, mounted=False, only="identity")
        assert falcon.testing.TestClient(app).simulate_get("/v3").status_code == 200
        assert cloud.names() == ["identity"]
        assert not hasattr(cloud, "image")
        assert cloud._transport is None
        assert not os.path.exists(datadir)
    finally:
        cloud.close()


def test_image_alone_challenges_with_the_catalogs_identity_endpoint(
    prepared: cfg.ConfigOpts,
) -> None:
    cloud = nimbus.wsgi.build_services(prepared, ["image"])
    try:
        client = falcon.testing.TestClient(
            nimbus.wsgi.build_app(cloud, mounted=False, only="image")
        )
        answer = client.simulate_get("/v2/images")
        assert answer.status_code == 401
        identity = f"{nimbus.wsgi.public_url(prepared)}/identity/v3"
        assert answer.headers["WWW-Authenticate"] == f'Keystone uri="{identity}"'
        # Its own port has no /v3: pointing there would send clients to a 404.
        assert client.simulate_get("/v3").status_code == 404
    finally:
        cloud.close()


def test_the_configured_auth_uri_wins(prepared: cfg.ConfigOpts) -> None:
    prepared.set_override("auth_uri", "https://keystone.example.org/v3", group="api")
    cloud = nimbus.wsgi.build_services(prepared, ["image"])
    try:
        client = falcon.testing.TestClient(
            nimbus.wsgi.build_app(cloud, mounted=False, only="image")
        )
        challenge = client.simulate_get("/v2/images").headers["WWW-Authenticate"]
        assert challenge == 'Keystone uri="https://keystone.example.org/v3"'
    finally:
        cloud.close()


def test_every_installed_service_has_a_target_of_its_name() -> None:
    assert callable(nimbus.wsgi.identity)
    assert callable(nimbus.wsgi.image)
    assert callable(nimbus.wsgi.compute)
    with pytest.raises(AttributeError):
        nimbus.wsgi.network  # noqa: B018 - not installed (yet)


def test_an_unknown_service_is_refused_with_the_installed_names(conf: cfg.ConfigOpts) -> None:
    with pytest.raises(exception.PluginNotFound, match="installed: compute, identity, image"):
        nimbus.wsgi.build_services(conf, ["network"])


SPLIT = {"identity": "http://keystone.test:5000", "image": "http://glance.test:9292/"}


def _split_app(conf: cfg.ConfigOpts, name: str) -> tuple[falcon.testing.TestClient, Cloud]:
    cloud = nimbus.wsgi.build_services(conf, [name])
    return falcon.testing.TestClient(nimbus.wsgi.build_app(cloud, mounted=False, only=name)), cloud


def test_a_split_deployment_advertises_each_services_own_url(conf: cfg.ConfigOpts) -> None:
    conf.set_override("service_endpoints", SPLIT, group="api")
    openrc = up.prepare(conf, "secret")

    identity, identity_cloud = _split_app(conf, "identity")
    image, image_cloud = _split_app(conf, "image")
    try:
        # The catalog bootstrap wrote names each service where it is served.
        issued = identity.simulate_post("/v3/auth/tokens", json=password_auth("secret"))
        assert issued.status_code == 201, issued.text
        urls = {
            entry["type"]: {ep["url"] for ep in entry["endpoints"]}
            for entry in issued.json["token"]["catalog"]
        }
        assert urls == {
            "identity": {"http://keystone.test:5000/v3"},
            "image": {"http://glance.test:9292"},
            # Not served apart: under the cloud's URL.
            "compute": {"http://127.0.0.1:8770/compute/v2.1"},
        }
        # Version documents and links point at the service's own URL.
        version = identity.simulate_get("/v3").json["version"]
        assert {link["href"] for link in version["links"]} >= {"http://keystone.test:5000/v3/"}
        versions = image.simulate_get("/").json["versions"]
        hrefs = {link["href"] for v in versions for link in v["links"]}
        assert hrefs and all(h.startswith("http://glance.test:9292/v2") for h in hrefs), hrefs
        # A client without a token is sent to the identity service's port.
        challenge = image.simulate_get("/v2/images").headers["WWW-Authenticate"]
        assert challenge == 'Keystone uri="http://keystone.test:5000/v3"'
        with open(openrc, encoding="utf-8") as f:
            assert "export OS_AUTH_URL=http://keystone.test:5000/v3\n" in f.read()
    finally:
        identity_cloud.close()
        image_cloud.close()
