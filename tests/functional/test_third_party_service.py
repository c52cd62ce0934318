"""A whole service, shipped as a separate package, joins the cloud through its descriptor.

The test writes a throwaway distribution, ``nimbus-widget``, with one
``nimbus.services`` entry point: a descriptor with an option group, a policy,
a migration branch, a Falcon API and a catalog entry.  pip installs it into a
temporary ``--target`` directory put on ``sys.path`` (as in
``test_third_party_plugin.py``), and nothing in nimbus is edited: the widget
service is then configured, migrated, listed in the catalog and served by the
same code paths as identity and image.
"""

from __future__ import annotations

import pathlib
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import falcon.testing
import pytest
import sqlalchemy as sa
from oslo_config import cfg
from oslo_config import generator as config_generator
from stevedore import extension

import nimbus.wsgi
from nimbus import descriptor, policies
from nimbus.cmd import up
from nimbus.conf import load_config, opts
from nimbus.db import migration

PACKAGE = "nimbus_widget"

_FILES = {
    "setup.cfg": """
        [metadata]
        name = nimbus-widget
        version = 0.1

        [options]
        packages = find:

        [options.entry_points]
        nimbus.services =
            widget = nimbus_widget.descriptor:WidgetDescriptor
    """,
    "pyproject.toml": """
        [build-system]
        requires = ["setuptools>=68"]
        build-backend = "setuptools.build_meta"
    """,
    "nimbus_widget/__init__.py": '"""Widgets: a throwaway nimbus service."""\n',
    "nimbus_widget/conf.py": """
        from oslo_config import cfg

        OPTS = [cfg.IntOpt("max_widgets", default=3, help="Most widgets a cloud holds.")]


        def register_opts(conf):
            conf.register_group(cfg.OptGroup("widget"))
            conf.register_opts(OPTS, group="widget")


        def list_opts():
            return [("widget", OPTS)]
    """,
    "nimbus_widget/policies.py": """
        from oslo_policy import policy


        def list_rules():
            return [policy.RuleDefault("widget:create", "role:member", description="Make one.")]
    """,
    "nimbus_widget/migrations/__init__.py": '"""Widget tables."""\n',
    "nimbus_widget/migrations/0001_widgets.py": """
        import sqlalchemy as sa
        from alembic import op

        revision = "widget_0001"
        down_revision = None
        branch_labels = ("widget",)
        depends_on = None


        def upgrade():
            op.create_table(
                "widgets",
                sa.Column("id", sa.Integer, primary_key=True),
                sa.Column("name", sa.String(64), nullable=False),
            )


        def downgrade():
            op.drop_table("widgets")
    """,
    "nimbus_widget/descriptor.py": """
        import falcon
        import sqlalchemy as sa

        from nimbus.api import errors
        from nimbus.api.app import ServiceAPI
        from nimbus.descriptor import CatalogEntry, ServiceDescriptor

        WIDGETS = sa.table("widgets", sa.column("id"), sa.column("name"))


        class Widgets:
            def __init__(self, cloud):
                self.cloud = cloud

            def on_get(self, req, resp):
                with self.cloud.database.reader() as session:
                    names = session.execute(sa.select(WIDGETS.c.name)).scalars().all()
                resp.media = {"widgets": list(names), "max": self.cloud.conf.widget.max_widgets}

            def on_post(self, req, resp):
                self.cloud.enforcer.authorize(req.context.nimbus, "widget:create")

                def write(session):
                    session.execute(sa.insert(WIDGETS).values(name=req.context.json["name"]))

                self.cloud.database.write(write)
                resp.status = falcon.HTTP_201


        class WidgetDescriptor(ServiceDescriptor):
            \"\"\"Widgets, for nimbus's own tests.\"\"\"

            name = "widget"
            requires = ("identity",)
            option_modules = ("nimbus_widget.conf",)
            policy_module = "nimbus_widget.policies"
            migrations = ("nimbus_widget.migrations",)

            def build(self, cloud):
                return {"widgets": Widgets(cloud)}

            def api(self, cloud):
                return ServiceAPI(
                    name="widget",
                    error_format=errors.FORMATS["nova"],
                    routes=lambda links: [("/v1/widgets", cloud.widgets)],
                    is_public=lambda method, path: False,
                )

            def catalog(self, conf, base_url):
                return [CatalogEntry("widget", "widgets", f"{base_url}/v1", "widgets")]
    """,
}


def _forget(prefix: str) -> None:
    for name in [name for name in sys.modules if name.split(".")[0] == prefix]:
        del sys.modules[name]


@pytest.fixture(scope="module")
def widget_site(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """A directory holding the widget distribution, installed by pip."""
    work = tmp_path_factory.mktemp("widget")
    source = work / "source"
    for name, text in _FILES.items():
        path = source / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    site = work / "site"
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-deps",
        "--no-index",
        "--no-build-isolation",
        "--no-cache-dir",
        "--target",
        str(site),
        str(source),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return site


@pytest.fixture
def widget_installed(widget_site: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The widget service, visible to this test only."""
    monkeypatch.syspath_prepend(str(widget_site))
    monkeypatch.setattr(extension.ExtensionManager, "ENTRY_POINT_CACHE", {})
    descriptor.reset_cache()
    yield
    descriptor.reset_cache()
    _forget(PACKAGE)


@pytest.fixture
def widget_conf(tmp_path: pathlib.Path, widget_installed: None) -> cfg.ConfigOpts:
    config_file = tmp_path / "nimbus.conf"
    config_file.write_text(
        f"[DEFAULT]\nstate_path = {tmp_path / 'state'}\n\n"
        "[identity]\npassword_hash_rounds = 4\n\n[widget]\nmax_widgets = 7\n",
        encoding="utf-8",
    )
    return load_config(["--config-file", str(config_file)], default_config_files=[])


def test_without_the_package_there_is_no_widget_service() -> None:
    descriptor.reset_cache()
    assert [d.name for d in descriptor.descriptors()] == ["identity", "image", "compute"]


def test_it_is_configured(widget_conf: cfg.ConfigOpts, tmp_path: pathlib.Path) -> None:
    assert widget_conf.widget.max_widgets == 7
    assert "widget" in {group for group, _ in opts.list_opts()}
    sample = tmp_path / "sample.conf"
    config_generator.main(["--namespace", "nimbus", "--output-file", str(sample)])
    assert "[widget]" in sample.read_text(encoding="utf-8")


@pytest.mark.usefixtures("widget_installed")
def test_its_policy_is_listed() -> None:
    assert "widget:create" in {rule.name for rule in policies.list_rules()}


def test_it_is_migrated_and_served_and_in_the_catalog(widget_conf: cfg.ConfigOpts) -> None:
    openrc = up.prepare(widget_conf, "secret")
    assert "widget_0001" in (migration.head() or "")

    cloud = nimbus.wsgi.build_services(widget_conf)
    try:
        assert migration.current(cloud.database) == migration.head()
        with cloud.database.engine.connect() as conn:
            assert "widgets" in sa.inspect(conn).get_table_names()
        client = falcon.testing.TestClient(nimbus.wsgi.build_app(cloud))
        auth = {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {
                        "user": {"name": "admin", "domain": {"id": "default"}, "password": "secret"}
                    },
                },
                "scope": {"project": {"name": "admin", "domain": {"id": "default"}}},
            }
        }
        issued = client.simulate_post("/identity/v3/auth/tokens", json=auth)
        assert issued.status_code == 201, issued.text
        token = issued.headers["X-Subject-Token"]
        catalog = {entry["type"]: entry for entry in issued.json["token"]["catalog"]}
        assert catalog["widget"]["endpoints"][0]["url"].endswith("/widget/v1")

        assert client.simulate_get("/widget/v1/widgets").status_code == 401
        made = client.simulate_post(
            "/widget/v1/widgets", json={"name": "w1"}, headers={"X-Auth-Token": token}
        )
        assert made.status_code == 201, made.text
        listed = client.simulate_get("/widget/v1/widgets", headers={"X-Auth-Token": token})
        assert listed.json == {"widgets": ["w1"], "max": 7}
        index = client.simulate_get("/").json["services"]
        assert "widget" in {service["name"] for service in index}
    finally:
        cloud.close()
    assert openrc.endswith("openrc")


def test_it_has_a_gunicorn_target_of_its_name(widget_conf: cfg.ConfigOpts) -> None:
    up.prepare(widget_conf, "secret")
    cloud = nimbus.wsgi.build_services(widget_conf, ["widget"])
    try:
        # Built with what it requires (identity checks its tokens), nothing more.
        assert cloud.names() == ["identity", "widget"]
        client = falcon.testing.TestClient(
            nimbus.wsgi.build_app(cloud, mounted=False, only="widget")
        )
        challenge = client.simulate_get("/v1/widgets")
        assert challenge.status_code == 401
        # Not served here: the challenge names the catalog's identity endpoint.
        assert challenge.headers["WWW-Authenticate"].endswith('/identity/v3"')
    finally:
        cloud.close()
    assert callable(nimbus.wsgi.widget)
