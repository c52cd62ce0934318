"""The layering rules of STYLE.md (2, 31) are ruff bans that really fire.

Each probe is a small file of imports, written into a temporary copy of
the repository's ruff configs (the root ``pyproject.toml`` and every config
below ``nimbus/``) at the path of the layer it stands for.  One run of the
real ``ruff`` checks them all: ruff lints each file with the closest config,
so a copy of the configs alone reproduces what ``ruff check .`` does to the
real tree, and the tree itself is never touched.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: Driver kinds in the tree, and those banned before they exist.
KINDS = sorted(path.parent.name for path in (ROOT / "nimbus/drivers").glob("*/__init__.py"))
PLANNED = ("compute", "identity", "image", "meter", "network", "volume")
ALL_KINDS = sorted(set(KINDS) | set(PLANNED))
SERVICES = PLANNED

#: Where driver code lives; a nested back-end package must be covered too.
DRIVER_DIRS = [
    "nimbus/drivers",
    *(f"nimbus/drivers/{kind}" for kind in KINDS),
    "nimbus/drivers/identity/sql",
]


def _ruff() -> list[str]:
    if importlib.util.find_spec("ruff") is not None:
        return [sys.executable, "-m", "ruff"]
    found = shutil.which("ruff")
    assert found, "ruff is in nimbus's test extra: pip install -e '.[test]'"
    return [found]


def _layout(root: Path) -> None:
    """Copy the repository's ruff configs, and nothing else, below *root*."""
    configs = [ROOT / "pyproject.toml"]
    for name in ("ruff.toml", ".ruff.toml", "pyproject.toml"):
        configs += (ROOT / "nimbus").rglob(name)
    for config in configs:
        target = root / config.relative_to(ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(config, target)


def _check(root: Path, probes: dict[str, tuple[str, str]]) -> dict[str, list[str]]:
    """Write each probe, run ruff once on them all, return its bans by probe."""
    paths = {}
    for index, (key, (directory, source)) in enumerate(probes.items()):
        # Packages all the way down, so that ruff resolves relative imports.
        for depth in range(1, len(Path(directory).parts) + 1):
            init = root.joinpath(*Path(directory).parts[:depth], "__init__.py")
            init.parent.mkdir(parents=True, exist_ok=True)
            init.touch()
        path = root / directory / f"probe_{index}.py"
        path.write_text(source, encoding="utf-8")
        paths[str(path.resolve())] = key
    command = [*_ruff(), "check", "--select", "TID", "--no-cache", "--exit-zero"]
    result = subprocess.run(
        [*command, "--output-format", "json", "nimbus"],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    found: dict[str, list[str]] = {key: [] for key in probes}
    for item in json.loads(result.stdout):
        if item["code"] == "TID251":
            found[paths[str(Path(item["filename"]).resolve())]].append(item["message"])
    return found


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    """Return ruff's banned-api messages for every probe of this module."""
    root = tmp_path_factory.mktemp("layout")
    _layout(root)
    probes = {f"rule {d} {m}": (d, _rule_source(m)) for d, m, _, _ in RULES}
    probes |= {f"form {form}": ("nimbus/drivers/image", FORMS[form]) for form in FORMS}
    probes |= {f"allowed {d} {s}": (d, s + "\n") for d, s in ALLOWED}
    return _check(root, probes)


def _rules() -> list[tuple[str, str, str, str]]:
    """Return (directory, imported module, ban, words of its message) for every rule."""
    rules = []
    for directory in DRIVER_DIRS:
        rules.append((directory, "nimbus.api.app", "nimbus.api", "never import the API layer"))
        rules.append((directory, "nimbus.db.api", "nimbus.db", "never import the database layer"))
        for service in SERVICES:
            module = f"nimbus.{service}.service"
            rules.append((directory, module, f"nimbus.{service}", "never import a service"))
    for directory in DRIVER_DIRS:
        parts = Path(directory).parts
        own = parts[2] if len(parts) > 2 else None
        for kind in ALL_KINDS:
            if kind != own:
                ban = f"nimbus.drivers.{kind}"
                rules.append((directory, f"{ban}.base", ban, "never import another kind's"))
    for directory in ("nimbus/api", "nimbus/api/identity", "nimbus/api/image"):
        for module in ("nimbus.drivers", "nimbus.drivers.identity.types"):
            rules.append((directory, module, "nimbus.drivers", "never to drivers"))
    for directory in ("nimbus/db", "nimbus/db/migrations"):
        for module in ("nimbus.drivers", "nimbus.drivers.identity.sql.models"):
            rules.append((directory, module, "nimbus.drivers", "never imports a driver"))
    for module in ("nimbus.cmd", "nimbus.cmd.up"):
        rules.append(("nimbus/testing", module, "nimbus.cmd", "below the command line"))
    return rules


RULES = _rules()


def _rule_source(module: str) -> str:
    parent, _, leaf = module.rpartition(".")
    return f"import {module}\nfrom {parent} import {leaf}\n"


@pytest.mark.parametrize(("directory", "module", "ban", "words"), RULES)
def test_rule_fires(
    reports: dict[str, list[str]], directory: str, module: str, ban: str, words: str
) -> None:
    messages = reports[f"rule {directory} {module}"]
    assert len(messages) == 2, messages
    assert all(message.startswith(f"`{ban}` is banned: ") for message in messages), messages
    assert all(words in message for message in messages), messages


FORMS = {
    "import": "import nimbus.db\n",
    "import-submodule": "import nimbus.db.models\n",
    "import-as": "import nimbus.db.api as db_api\n",
    "from-package": "from nimbus import db\n",
    "from-module": "from nimbus.db import api\n",
    "from-submodule": "from nimbus.db.api import Database\n",
    "relative": "from ...db import api\n",
    "in-function": "def f():\n    from nimbus.db import api\n\n    return api\n",
    # Type-only imports are banned too: a driver that needs nimbus.db's
    # types needs nimbus.db; the driver base declares what it takes.
    "type-checking": (
        "from typing import TYPE_CHECKING\n\n"
        "if TYPE_CHECKING:\n    from nimbus.db.api import Database\n"
    ),
}


@pytest.mark.parametrize("form", FORMS)
def test_every_import_form_fires(reports: dict[str, list[str]], form: str) -> None:
    messages = reports[f"form {form}"]
    assert messages, f"{form} import of nimbus.db from a driver passed"
    assert all(message.startswith("`nimbus.db` is banned: ") for message in messages)


ALLOWED = [
    ("nimbus/drivers/image", "from nimbus import exception"),
    ("nimbus/drivers/image", "from nimbus.common import passwords"),
    ("nimbus/drivers/identity/sql", "import sqlalchemy"),
    ("nimbus/drivers/identity/sql", "from nimbus.drivers.identity.sql import models"),
    ("nimbus/drivers/identity", "import nimbus.identityx"),
    *((f"nimbus/drivers/{kind}", f"from nimbus.drivers.{kind} import base") for kind in KINDS),
    ("nimbus/api/image", "from nimbus.image import ImageService"),
    ("nimbus/api/identity", "from nimbus.identity.service import IdentityService"),
    ("nimbus/api", "from nimbus import exception"),
    ("nimbus/db", "from nimbus import exception"),
    ("nimbus/db/migrations", "import sqlalchemy"),
    ("nimbus/testing", "from nimbus.drivers.image.base import ImageStore"),
    ("nimbus/testing", "from nimbus.conf import new_config"),
    # Services and the command line are above drivers and the database.
    ("nimbus/identity", "from nimbus.drivers.identity import IdentityDriver"),
    ("nimbus/image", "from nimbus.db import models"),
    ("nimbus/cmd", "from nimbus.drivers.image import fake"),
    ("nimbus", "from nimbus.api import app"),
]


@pytest.mark.parametrize(("directory", "statement"), ALLOWED)
def test_allowed_import_passes(
    reports: dict[str, list[str]], directory: str, statement: str
) -> None:
    assert reports[f"allowed {directory} {statement}"] == []


def test_configs_are_up_to_date() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools/generate_import_rules.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
