"""The kit's rule for responders (STYLE.md, issue 9 section 2), checked on the source.

A responder parses the request, calls one service method and sets the
response.  Anything longer, and any ``try``, means logic that belongs in
the service layer or in the kit (an error is raised by the service and
mapped by the app's error handlers, never caught in a responder).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

API = Path(__file__).resolve().parents[3] / "nimbus" / "api"

#: Statement lines a responder body may span, its signature and docstring left out.
MAX_LINES = 10


def _responders() -> list[tuple[str, ast.FunctionDef]]:
    found = []
    for path in sorted(API.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.ClassDef):
                continue
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name.startswith("on_"):
                    place = f"{path.relative_to(API.parent.parent)}:{item.lineno}"
                    where = f"{place} {node.name}.{item.name}"
                    found.append((where, item))
    return found


def _body_lines(func: ast.FunctionDef) -> int:
    body = func.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]  # the docstring
    if not body:
        return 0
    return (body[-1].end_lineno or body[-1].lineno) - body[0].lineno + 1


def _tries(func: ast.FunctionDef) -> list[int]:
    return [node.lineno for node in ast.walk(func) if isinstance(node, ast.Try | ast.TryStar)]


RESPONDERS = _responders()


def test_the_tree_has_responders() -> None:
    # A moved package or a broken walk must not turn the checks below into no-ops.
    assert len(RESPONDERS) >= 40


@pytest.mark.parametrize(("where", "func"), RESPONDERS, ids=[w for w, _ in RESPONDERS])
def test_responder_is_short(where: str, func: ast.FunctionDef) -> None:
    assert _body_lines(func) <= MAX_LINES, f"{where} is {_body_lines(func)} lines"


@pytest.mark.parametrize(("where", "func"), RESPONDERS, ids=[w for w, _ in RESPONDERS])
def test_responder_catches_nothing(where: str, func: ast.FunctionDef) -> None:
    assert not _tries(func), f"{where} has try at lines {_tries(func)}"


def test_the_checks_can_fail() -> None:
    long = "".join(f"        x{i} = {i}\n" for i in range(MAX_LINES + 1))
    guarded = "        try:\n            pass\n        except Exception:\n            pass\n"
    source = f"class R:\n    def on_get(self):\n{long}\n    def on_put(self):\n{guarded}"
    long_one, guarded_one = ast.parse(source).body[0].body  # type: ignore[attr-defined]
    assert _body_lines(long_one) == MAX_LINES + 1
    assert _tries(guarded_one) == [6 + MAX_LINES]
    assert _tries(long_one) == []
