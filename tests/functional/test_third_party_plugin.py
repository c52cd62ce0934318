"""A third-party driver is found and used through its entry points alone.

The example distribution ``examples/nimbus-identity-static`` is built and
installed with pip, as an operator would install it, but into a temporary
``--target`` directory that the tests put on ``sys.path`` (which is where
``importlib.metadata``, and so stevedore, look for entry points).  Installing
into the running environment and uninstalling afterwards would be just as
real, but a crash in between would leave the plugin installed for every
later run, and two runs at once would trip over each other; a temporary
target leaves nothing behind.  The build runs without build isolation, so it
needs no network: the test environment must have ``setuptools>=70.1`` (or
``wheel``).
"""

from __future__ import annotations

import importlib.util
import json
import pathlib
import shutil
import subprocess
import sys
from collections.abc import Iterator

import pytest
from oslo_config import cfg
from oslo_config import generator as config_generator
from stevedore import extension

from nimbus import exception, registry
from nimbus.cmd import main as nimbus_main
from nimbus.common import passwords
from nimbus.conf import load_config
from nimbus.drivers.identity import IdentityDriver

NAMESPACE = "nimbus.identity.backends"
EXAMPLE = pathlib.Path(__file__).resolve().parents[2] / "examples" / "nimbus-identity-static"
PACKAGE = "nimbus_identity_static"


def _forget(prefix: str) -> None:
    for name in [name for name in sys.modules if name.split(".")[0] == prefix]:
        del sys.modules[name]


def _add_site(site: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(site))
    # stevedore remembers each namespace's entry points for the life of the
    # process (a server's plugins are installed before it starts); this
    # process has already looked, so make it look again.
    monkeypatch.setattr(extension.ExtensionManager, "ENTRY_POINT_CACHE", {})


@pytest.fixture(scope="module")
def static_site(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """A directory holding the example distribution, installed by pip."""
    assert importlib.util.find_spec(PACKAGE) is None, f"{PACKAGE} must not be importable yet"
    work = tmp_path_factory.mktemp("static-plugin")
    # Build from a copy: pip builds in the source tree, and the checkout
    # must not collect build/ and *.egg-info directories.
    source = work / "source"
    shutil.copytree(
        EXAMPLE,
        source,
        ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__", ".tox"),
    )
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
    assert done.returncode == 0, (
        "pip could not build the example (the test extra must bring setuptools>=70.1):\n"
        + done.stdout
        + done.stderr
    )
    return site


@pytest.fixture
def static_installed(static_site: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The example distribution, visible to this test only."""
    _add_site(static_site, monkeypatch)
    yield
    _forget(PACKAGE)


@pytest.fixture
def users_file(tmp_path: pathlib.Path) -> pathlib.Path:
    path = tmp_path / "users.json"
    entry = {
        "id": "4f2a",
        "name": "operator",
        "domain_id": "default",
        "password_hash": passwords.hash_password("from the file", 4),
        "email": "ops@example.org",
    }
    path.write_text(json.dumps({"users": [entry]}), encoding="utf-8")
    return path


@pytest.fixture
def static_conf(tmp_path: pathlib.Path, users_file: pathlib.Path) -> cfg.ConfigOpts:
    """A config file as an operator writes it: the plugin's options included."""
    config_file = tmp_path / "nimbus.conf"
    config_file.write_text(
        f"[DEFAULT]\nstate_path = {tmp_path / 'state'}\n\n"
        "[identity]\ndriver = static\npassword_hash_rounds = 4\n\n"
        f"[identity_static]\nusers_file = {users_file}\n",
        encoding="utf-8",
    )
    return load_config(["--config-file", str(config_file)], default_config_files=[])


@pytest.mark.usefixtures("static_installed")
def test_the_configured_driver_loads_and_authenticates(static_conf: cfg.ConfigOpts) -> None:
    driver = registry.load_driver(
        NAMESPACE, static_conf.identity.driver, static_conf, expected=IdentityDriver
    )
    assert type(driver).__module__ == f"{PACKAGE}.driver"
    assert driver.capabilities == frozenset()
    user = driver.authenticate("4f2a", "from the file")
    assert (user.name, user.email) == ("operator", "ops@example.org")
    with pytest.raises(exception.AuthenticationFailed):
        driver.authenticate("4f2a", "wrong")


@pytest.mark.usefixtures("static_installed")
def test_it_is_listed_with_its_distribution() -> None:
    assert "static" in registry.installed_names(NAMESPACE)
    (info,) = [p for p in registry.list_plugins([NAMESPACE]) if p.name == "static"]
    assert info.distribution == "nimbus-identity-static"
    assert info.target == f"{PACKAGE}.driver:StaticIdentityDriver"
    assert info.summary == "Read-only users from a JSON file (``[identity_static] users_file``)."


@pytest.mark.usefixtures("static_installed")
def test_nimbus_plugins_shows_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert nimbus_main.main(["plugins", "--namespace", NAMESPACE, "--format", "json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    (static,) = [p for p in listed[NAMESPACE] if p["name"] == "static"]
    assert static["distribution"] == "nimbus-identity-static"


@pytest.mark.usefixtures("static_installed")
def test_its_options_reach_the_sample_generator(tmp_path: pathlib.Path) -> None:
    sample = tmp_path / "static.conf.sample"
    config_generator.main(["--namespace", "nimbus_identity_static", "--output-file", str(sample)])
    text = sample.read_text(encoding="utf-8")
    assert "[identity_static]" in text
    assert "#users_file = /etc/nimbus/users.json" in text


def test_an_unknown_name_lists_the_installed_ones(conf: cfg.ConfigOpts) -> None:
    with pytest.raises(exception.PluginNotFound) as info:
        registry.load_driver(NAMESPACE, "ldap", conf, expected=IdentityDriver)
    message = str(info.value)
    assert "'ldap'" in message and NAMESPACE in message
    assert "installed: fake, sql" in message


@pytest.fixture
def bad_plugins(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A temporary distribution whose identity back-ends are all broken."""
    site = tmp_path / "bad-site"
    dist_info = site / "nimbus_bad_plugins-0.1.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: nimbus-bad-plugins\nVersion: 0.1\n", encoding="utf-8"
    )
    (dist_info / "entry_points.txt").write_text(
        f"[{NAMESPACE}]\n"
        "not-a-driver = collections:OrderedDict\n"
        "half-done = nimbus_bad_plugins:HalfDone\n"
        "unimportable = nimbus_bad_plugins_missing:Driver\n",
        encoding="utf-8",
    )
    (site / "nimbus_bad_plugins.py").write_text(
        '"""Broken on purpose."""\n\n'
        "from nimbus.drivers.identity import IdentityDriver\n\n\n"
        "class HalfDone(IdentityDriver):\n"
        '    """Implements no operation at all."""\n',
        encoding="utf-8",
    )
    _add_site(site, monkeypatch)
    yield
    _forget("nimbus_bad_plugins")


@pytest.mark.usefixtures("bad_plugins")
def test_a_plugin_of_the_wrong_type_is_refused(conf: cfg.ConfigOpts) -> None:
    with pytest.raises(exception.PluginLoadError, match="not a subclass") as info:
        registry.load_driver(NAMESPACE, "not-a-driver", conf, expected=IdentityDriver)
    assert "not-a-driver" in str(info.value) and NAMESPACE in str(info.value)


@pytest.mark.usefixtures("bad_plugins")
def test_an_incomplete_driver_fails_at_load_time(conf: cfg.ConfigOpts) -> None:
    with pytest.raises(exception.PluginLoadError, match="abstract"):
        registry.load_driver(NAMESPACE, "half-done", conf, expected=IdentityDriver)


@pytest.mark.usefixtures("bad_plugins")
def test_an_unimportable_plugin_is_a_load_error(conf: cfg.ConfigOpts) -> None:
    with pytest.raises(exception.PluginLoadError, match="nimbus_bad_plugins_missing"):
        registry.load_driver(NAMESPACE, "unimportable", conf, expected=IdentityDriver)
    # A listing still shows it, with the reason.
    (info,) = [p for p in registry.list_plugins([NAMESPACE]) if p.name == "unimportable"]
    assert info.summary.startswith("(cannot load: ModuleNotFoundError")
    assert info.distribution == "nimbus-bad-plugins"
