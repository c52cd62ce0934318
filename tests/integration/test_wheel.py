"""The sdist and the wheel hold the whole package, and the installed wheel runs the cloud.

Every other test runs nimbus from the develop install (``pip install -e``,
tox's ``usedevelop``), which imports straight from the checkout and so cannot
notice a package or a data file that setuptools leaves out of a build.  This
module builds the sdist, and the wheel from that sdist (as pip does), from a
copy of the source tree; checks both file lists against the tree; installs the
wheel with its ``client`` extra into a fresh virtualenv (no
``--system-site-packages``, which would hide a missing dependency); and from a
directory outside the checkout runs ``nimbus up`` and the ``openstack`` client
of that virtualenv.

One build and one virtualenv serve the whole module; pip's cache makes the
install fast after the first run.  Installing needs the package index.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pytest

from nimbus.testing import server as launcher

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
ADMIN_PASSWORD = "wheel-admin-pw"
# Caches, build output and git's own files: not part of the source tree.
# Used without git only (a worktree's ``.git`` is a file).
_SKIPPED_NAMES = frozenset(
    {
        ".git",
        ".hypothesis",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".tox",
        ".venv",
        "__pycache__",
        "build",
        "dist",
    }
)
_SKIPPED_DIRS_SUFFIXES = (".egg-info",)
_SKIPPED_FILE_SUFFIXES = (".pyc", ".pyo")
# The files that sdists of a setup.cfg project need besides the package.
_SDIST_TOP_FILES = ("setup.cfg", "pyproject.toml", "README.md")
# Data files the package ships; the tree must hold them for the file-list
# checks below to mean anything.
_KNOWN_DATA = ("nimbus/py.typed", "nimbus/db/migrations/script.py.mako")
# The distribution's name (``nimbus`` on PyPI is an unrelated project), and
# the prefix of its file names (PEP 427, 625: normalized, ``_`` for ``-``).
DISTRIBUTION = "nimbus-cloud"
_FILE_PREFIX = "nimbus_cloud-"
# Files under nimbus/ that configure development tools (per-directory lint
# rules), not the package: neither distribution needs them.
_TOOL_CONFIG_NAMES = frozenset({"ruff.toml"})


@dataclasses.dataclass(frozen=True)
class Dists:
    """The built distributions."""

    sdist: Path
    wheel: Path
    #: What ``python -m build`` printed, standard output and error.
    output: str


def _foreign(variable: str) -> bool:
    """Tell whether a variable of this process would steer the virtualenv's programs."""
    return variable in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV") or variable.startswith("OS_")


@dataclasses.dataclass(frozen=True)
class Venv:
    """A virtualenv with the wheel installed, and a directory outside the checkout."""

    path: Path
    outside: Path

    @property
    def bin(self) -> Path:
        """Return the virtualenv's script directory."""
        return self.path / "bin"

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """Return an environment that runs this virtualenv's programs and nothing else's.

        :param extra: variables to add (``OS_*`` from an openrc, ...).
        """
        env = {k: v for k, v in os.environ.items() if not _foreign(k)}
        env["VIRTUAL_ENV"] = str(self.path)
        env["PATH"] = os.pathsep.join([str(self.bin), env.get("PATH", os.defpath)])
        env.update(extra or {})
        return env

    def run(
        self, argv: Sequence[str], *, env: Mapping[str, str] | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run a program of the virtualenv from the outside directory.

        :raises AssertionError: it failed; the message holds its output.
        """
        result = subprocess.run(
            [str(self.bin / argv[0]), *argv[1:]],
            cwd=self.outside,
            env=self.env(env),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if result.returncode != 0:
            raise AssertionError(
                f"{' '.join(argv)} failed ({result.returncode}):\n"
                f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
            )
        return result


def _git_files(root: Path) -> list[str] | None:
    """Return the files git sees in *root* (tracked or new, not ignored), or ``None``."""
    git = shutil.which("git")
    if git is None:
        return None
    try:
        top = subprocess.run(
            [git, "-C", str(root), "rev-parse", "--show-toplevel"],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout.strip()
    except subprocess.CalledProcessError:
        return None
    if Path(top).resolve() != root:
        return None  # an unpacked sdist inside some other repository
    listed = subprocess.run(
        [git, "-C", str(root), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        check=True,
        timeout=30,
    ).stdout.decode()
    # A file deleted but not yet committed is still listed as cached.
    return sorted({p for p in listed.split("\0") if p and (root / p).is_file()})


def _walked_files(root: Path) -> list[str]:
    """Return the files under *root*, less caches and build output."""
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [
            d
            for d in dirnames
            if d not in _SKIPPED_NAMES and not d.endswith(_SKIPPED_DIRS_SUFFIXES)
        ]
        for name in filenames:
            if name not in _SKIPPED_NAMES and not name.endswith(_SKIPPED_FILE_SUFFIXES):
                found.append(Path(dirpath, name).relative_to(root).as_posix())
    return sorted(found)


@pytest.fixture(scope="module")
def source_files() -> list[str]:
    """The files of the source tree, relative to its root, in POSIX form."""
    files = _git_files(ROOT)
    return _walked_files(ROOT) if files is None else files


@pytest.fixture(scope="module")
def package_files(source_files: list[str]) -> list[str]:
    """The files of the source tree under ``nimbus/``, less tool configuration."""
    files = [
        p
        for p in source_files
        if p.startswith("nimbus/") and p.rpartition("/")[2] not in _TOOL_CONFIG_NAMES
    ]
    # Guards the checks below against an empty or mangled listing.
    for known in ("nimbus/__init__.py", *_KNOWN_DATA):
        assert known in files, f"the source tree listing lacks {known}"
    return files


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    """A scratch directory outside the checkout, removed with everything in it."""
    with tempfile.TemporaryDirectory(prefix="nimbus-wheel-") as name:
        path = Path(name).resolve()
        assert not path.is_relative_to(ROOT), f"{path} is inside the checkout {ROOT}"
        yield path


@pytest.fixture(scope="module")
def dists(workdir: Path, source_files: list[str]) -> Dists:
    """Build the sdist, then the wheel from it, from a copy of the source tree.

    The copy keeps the ``build/`` and ``*.egg-info`` that setuptools writes
    out of the checkout.
    """
    src = workdir / "src"
    for rel in source_files:
        target = src / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, target)
    out = workdir / "dist"
    # Without --sdist/--wheel, build makes the sdist and then the wheel from
    # the unpacked sdist: a file the sdist lacks is missing from the wheel too.
    result = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(src)],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode != 0:
        pytest.fail(f"python -m build failed ({result.returncode}):\n{result.stderr[-4000:]}")
    sdists = sorted(out.glob(f"{_FILE_PREFIX}*.tar.gz"))
    wheels = sorted(out.glob(f"{_FILE_PREFIX}*.whl"))
    assert len(sdists) == 1 and len(wheels) == 1, f"unexpected build output: {os.listdir(out)}"
    return Dists(sdist=sdists[0], wheel=wheels[0], output=result.stdout + result.stderr)


@pytest.fixture(scope="module")
def venv(workdir: Path, dists: Dists) -> Venv:
    """A fresh virtualenv with the wheel and its ``client`` extra installed."""
    env = Venv(path=workdir / "venv", outside=workdir / "outside")
    env.outside.mkdir()
    subprocess.run(
        [sys.executable, "-m", "venv", str(env.path)],
        cwd=env.outside,
        check=True,
        capture_output=True,
        timeout=120,
    )
    env.run(
        [
            "python",
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            # Byte-compiling the client and its many dependencies is slow and buys
            # nothing here: what the tests import is compiled when imported.
            "--no-compile",
            f"{dists.wheel}[client]",
        ],
        timeout=600,
    )
    return env


def _wheel_names(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as zf:
        return {name for name in zf.namelist() if not name.endswith("/")}


def _sdist_names(sdist: Path) -> set[str]:
    """Return the sdist's file names without their ``nimbus_cloud-<version>/`` prefix."""
    with tarfile.open(sdist) as tf:
        return {m.name.partition("/")[2] for m in tf.getmembers() if m.isfile()}


def test_build_warns_of_no_package_left_out(dists: Dists) -> None:
    # setuptools warns of a directory with package data that is not a package.
    assert "would be ignored" not in dists.output, dists.output[-6000:]


def test_wheel_holds_every_file_of_the_package(dists: Dists, package_files: list[str]) -> None:
    in_wheel = _wheel_names(dists.wheel)
    missing = [p for p in package_files if p not in in_wheel]
    assert not missing, "the wheel lacks these files of the source tree:\n" + "\n".join(missing)


def test_wheel_holds_only_the_package(dists: Dists) -> None:
    # Excluded trees (tests, examples, benchmarks) must not become top-level packages.
    stray = sorted(
        name
        for name in _wheel_names(dists.wheel)
        if not name.startswith("nimbus/") and not name.split("/")[0].endswith(".dist-info")
    )
    assert not stray, "the wheel holds files outside the nimbus package:\n" + "\n".join(stray)


def test_sdist_holds_the_metadata_and_every_file_of_the_package(
    dists: Dists, package_files: list[str]
) -> None:
    in_sdist = _sdist_names(dists.sdist)
    missing = [p for p in [*_SDIST_TOP_FILES, *package_files] if p not in in_sdist]
    assert not missing, "the sdist lacks these files of the source tree:\n" + "\n".join(missing)


def test_installed_package_imports_from_the_venv(venv: Venv) -> None:
    result = venv.run(
        [
            "python",
            "-c",
            "import nimbus, nimbus.api, nimbus.wsgi, nimbus.db.migration; "
            "print(nimbus.__file__); print(nimbus.db.migration.head())",
        ]
    )
    where, head = result.stdout.split()
    assert Path(where).resolve().is_relative_to(venv.path), f"nimbus imported from {where}"
    assert head != "None", "the installed package holds no alembic revision"


def test_installed_distribution_is_named_ours(venv: Venv) -> None:
    result = venv.run(
        [
            "python",
            "-c",
            "import json; from importlib import metadata; "
            f"dist = metadata.distribution({DISTRIBUTION!r}); "
            "print(json.dumps([dist.metadata['Name'], "
            "sorted({ep.dist.name for ep in metadata.entry_points(group='nimbus.services')}), "
            "metadata.packages_distributions()['nimbus']]))",
        ]
    )
    name, service_dists, package_dists = json.loads(result.stdout)
    assert name == DISTRIBUTION
    assert service_dists == [DISTRIBUTION]
    assert package_dists == [DISTRIBUTION]
    plugins = json.loads(venv.run(["nimbus", "plugins", "--format", "json"]).stdout)
    assert {entry["distribution"] for entry in plugins["nimbus.identity.backends"]} == {
        DISTRIBUTION
    }


def _leave_the_checkout(venv: Venv, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the processes :class:`~nimbus.testing.server.Server` starts run like ``venv.run``.

    Server starts them in this process's directory, which must not be the
    checkout: the ``gunicorn`` command line puts its directory first on
    ``sys.path``.  And it adds its *env* to this process's environment, so
    what would steer them must leave that.
    """
    monkeypatch.chdir(venv.outside)
    for variable in [v for v in os.environ if _foreign(v)]:
        monkeypatch.delenv(variable)


def test_installed_cloud_stores_and_returns_an_image(
    venv: Venv, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = workdir / "state"
    config = launcher.write_config(workdir / "nimbus.conf", {"DEFAULT": {}})
    port = launcher.free_port()
    server = launcher.Server(
        [
            str(venv.bin / "nimbus"),
            "up",
            "--host",
            launcher.HOST,
            "--port",
            str(port),
            "--state-dir",
            str(state),
            "--admin-password",
            ADMIN_PASSWORD,
            # Only this file: not a nimbus.conf of the user's or the machine's.
            "--config-file",
            str(config),
        ],
        port=port,
        log_path=workdir / "nimbus-up.log",
        env={**venv.env(), "NIMBUS_CONFIG_FILE": ""},
        state_dir=state,
        name="nimbus up (from the wheel)",
    )
    _leave_the_checkout(venv, monkeypatch)
    image = venv.outside / "small.raw"
    image.write_bytes(bytes(range(256)) * 1024 + b"end of the image")
    saved = venv.outside / "saved.raw"
    with launcher.serve(server, "/identity/v3", ready_timeout=90) as running:
        openrc = running.openrc()
        venv.run(["openstack", "token", "issue"], env=openrc)
        # As the README says: source the openrc in a shell that has not
        # activated the virtualenv, and the openstack client is found.
        shell = {k: v for k, v in venv.env().items() if k != "VIRTUAL_ENV"}
        shell["PATH"] = "/usr/local/bin:/usr/bin:/bin"
        sourced = subprocess.run(
            ["bash", "-c", f"source {shlex.quote(str(state / 'openrc'))} && command -v openstack"],
            cwd=venv.outside,
            env=shell,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert sourced.stdout.strip() == str(venv.bin / "openstack"), sourced
        venv.run(
            [
                "openstack",
                "image",
                "create",
                "--disk-format",
                "raw",
                "--container-format",
                "bare",
                "--file",
                str(image),
                "img",
            ],
            env=openrc,
        )
        venv.run(["openstack", "image", "save", "--file", str(saved), "img"], env=openrc)
        assert saved.read_bytes() == image.read_bytes()
        code = running.stop()
    assert code == 0, f"nimbus up did not stop cleanly on SIGTERM:\n{server.log_tail()}"


def test_installed_commands_prepare_state_for_the_gunicorn_target(
    venv: Venv, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The README's split deployment, on SQLite: migrate, make keys, bootstrap, serve.
    config = launcher.write_config(
        workdir / "split.conf", {"DEFAULT": {"state_path": workdir / "split-state"}}
    )
    nimbus = ["nimbus", "--config-file", str(config)]
    venv.run([*nimbus, "db", "upgrade"])
    venv.run([*nimbus, "fernet", "setup"])
    venv.run([*nimbus, "bootstrap", "--bootstrap-password", ADMIN_PASSWORD])

    port = launcher.free_port()
    # gunicorn_command runs this interpreter's gunicorn; the venv's must serve.
    argv = launcher.gunicorn_command("nimbus.wsgi:all_services()", port)
    assert argv[:3] == [sys.executable, "-m", "gunicorn"]
    server = launcher.Server(
        [str(venv.bin / "python"), *argv[1:]],
        port=port,
        log_path=workdir / "gunicorn.log",
        env={**venv.env(), "NIMBUS_CONFIG_FILE": str(config)},
        name="gunicorn nimbus.wsgi:all_services() (from the wheel)",
    )
    _leave_the_checkout(venv, monkeypatch)
    with launcher.serve(server, "/identity/v3", ready_timeout=90) as running:
        admin = {
            "OS_AUTH_URL": f"{running.url}/identity/v3",
            "OS_IDENTITY_API_VERSION": "3",
            "OS_AUTH_TYPE": "password",
            "OS_USERNAME": "admin",
            "OS_PASSWORD": ADMIN_PASSWORD,
            "OS_PROJECT_NAME": "admin",
            "OS_USER_DOMAIN_NAME": "Default",
            "OS_PROJECT_DOMAIN_NAME": "Default",
        }
        venv.run(["openstack", "token", "issue"], env=admin)
        code = running.stop()
    assert code == 0, f"gunicorn did not stop cleanly on SIGTERM:\n{server.log_tail()}"
