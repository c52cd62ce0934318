"""The distribution's name and files, and the install lines of the documentation.

The import package is ``nimbus``; the distribution is not named so, because
``nimbus`` on PyPI is somebody else's, unrelated project: ``pip install
'nimbus[mysql]'`` would install that one.  These read the source tree only;
``tests/integration/test_wheel.py`` builds and installs the distribution.
"""

from __future__ import annotations

import configparser
import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "nimbus-identity-static"
# The distributions of this repository, by the directory of their setup.cfg.
SETUP_DIRS = (ROOT, EXAMPLE)
# pip install options whose value is not what is installed.
_OPTIONS_WITH_VALUES = frozenset({"-c", "--constraint", "-t", "--target", "-i", "--index-url"})


def _metadata_name(directory: Path) -> str:
    parser = configparser.ConfigParser()
    parser.read(directory / "setup.cfg", encoding="utf-8")
    return parser["metadata"]["name"]


def _requirement_name(requirement: str) -> str:
    """Return the distribution a requirement names, normalized (PEP 503)."""
    name = re.match(r"[A-Za-z0-9._-]+", requirement.strip())
    assert name is not None, f"not a requirement: {requirement!r}"
    return re.sub(r"[-_.]+", "-", name.group(0)).lower()


def _documents() -> list[Path]:
    return [
        ROOT / "README.md",
        *sorted((ROOT / "doc").rglob("*.md")),
        *sorted((ROOT / "examples").glob("*/README.md")),
        ROOT / "benchmarks" / "README.md",
    ]


def _install_targets() -> list[tuple[str, str]]:
    """Return ``(document and line, target)`` for what each ``pip install`` line installs."""
    found = []
    for document in _documents():
        text = document.read_text(encoding="utf-8")
        for number, line in enumerate(text.splitlines(), start=1):
            _, sep, rest = line.partition("pip install ")
            if not sep:
                continue
            words = shlex.split(rest, comments=True)
            where = f"{document.relative_to(ROOT)}:{number}"
            skip = False
            for word in words:
                if word in ("&&", ";", "|"):
                    break  # the next command
                if skip:
                    skip = False
                elif word.startswith("-"):
                    skip = word in _OPTIONS_WITH_VALUES
                else:
                    found.append((where, word))
    return found


def test_the_distribution_is_not_named_nimbus() -> None:
    name = _metadata_name(ROOT)
    assert _requirement_name(name) != "nimbus", "nimbus on PyPI is an unrelated project"


def _install_requires(text: str) -> list[str]:
    """Return the requirements of every ``install_requires`` of a setup.cfg, or its excerpts."""
    found = []
    for block in re.findall(r"^install_requires =\n((?:[ \t]+.*\n?)+)", text, flags=re.M):
        for line in block.splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                found.append(_requirement_name(line))
    return found


def test_the_example_driver_requires_this_distribution() -> None:
    required = _install_requires((EXAMPLE / "setup.cfg").read_text(encoding="utf-8"))
    assert _requirement_name(_metadata_name(ROOT)) in required
    assert "nimbus" not in required


def test_no_documented_driver_requires_the_other_nimbus() -> None:
    for document in _documents():
        required = _install_requires(document.read_text(encoding="utf-8"))
        assert "nimbus" not in required, f"{document.relative_to(ROOT)} requires nimbus"


def test_every_install_line_names_a_path_or_a_distribution_of_ours() -> None:
    ours = {_requirement_name(_metadata_name(d)) for d in SETUP_DIRS}
    targets = _install_targets()
    assert targets, "the README has install lines; the parser found none"
    wrong = []
    for where, target in targets:
        if target.startswith((".", "/", "~")) or "/" in target.split("[")[0]:
            continue  # a checkout, a directory or a built file: installs as written
        if _requirement_name(target) not in ours:
            wrong.append(f"{where}: {target}")
    assert not wrong, "install lines naming a distribution that is not ours:\n" + "\n".join(wrong)


def test_install_lines_from_an_index_name_no_unpublished_distribution() -> None:
    # Neither distribution is on a package index yet: an install line that
    # names one by its name fails on a fresh machine.
    by_name = [
        f"{where}: {target}"
        for where, target in _install_targets()
        if not target.startswith((".", "/", "~")) and "/" not in target.split("[")[0]
    ]
    assert not by_name, "install lines that need a package index:\n" + "\n".join(by_name)


def _walkthrough_commands() -> list[str]:
    """Return the shell lines of the README's "Using the cloud" section."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Using the cloud", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, flags=re.S)
    assert blocks, "the README's walk-through has no shell blocks"
    return [line for block in blocks for line in block.splitlines() if line.strip()]


def test_the_walkthrough_needs_nothing_that_make_up_does_not_install() -> None:
    # `make up` installs nimbus and the openstack client; "source" comes
    # with the shell, and truncate with coreutils on every Debian machine.
    available = {"source", "openstack", "truncate"}
    programs = {shlex.split(line, comments=True)[0] for line in _walkthrough_commands()}
    assert programs <= available, f"the walk-through also needs {sorted(programs - available)}"


def test_every_directory_of_the_package_is_a_package_of_the_distribution() -> None:
    # A directory setuptools does not list is left out of the build, with a
    # "Package would be ignored" warning when it holds package data.
    setupcfg = pytest.importorskip("setuptools.config.setupcfg")
    configuration = setupcfg.read_configuration(str(ROOT / "setup.cfg"))
    packages = set(configuration["options"]["packages"])
    directories = {
        path.relative_to(ROOT).as_posix().replace("/", ".")
        for path in [ROOT / "nimbus", *(ROOT / "nimbus").rglob("*")]
        if path.is_dir() and path.name != "__pycache__" and any(path.glob("*.py*"))
    }
    assert directories - packages == set(), "directories setuptools would leave out"
    assert not {p for p in packages if p.split(".")[0] != "nimbus" or "__pycache__" in p}
