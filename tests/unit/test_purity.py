"""The evaluation package is pure: an ast scan of its imports.

Importing ``webapp.evaluation`` runs ``webapp/__init__.py`` (which imports Flask),
so ``sys.modules`` proves nothing; the source is scanned instead.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "webapp" / "evaluation"
FORBIDDEN = ("flask", "sqlalchemy", "webapp", "flag_engine", "flagsmith")
IMPURE_CALLS = {"open", "print", "input"}
IMPURE_MODULES = ("random", "time", "datetime", "os", "socket", "requests", "secrets")


def _modules(tree: ast.AST) -> list[str]:
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    return names


SOURCES = sorted(PACKAGE.glob("*.py"))


def test_package__has_sources() -> None:
    assert len(SOURCES) >= 8


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.name)
def test_module__imports__no_framework_oracle_or_webapp_module(source: Path) -> None:
    # Given
    tree = ast.parse(source.read_text(), filename=str(source))

    # When
    offending = [
        name
        for name in _modules(tree)
        if name.split(".")[0] in FORBIDDEN or name.split(".")[0] in IMPURE_MODULES
    ]

    # Then (relative imports inside the package are fine)
    assert offending == [], f"{source.name} imports {offending}"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.name)
def test_module__calls__no_io_builtins(source: Path) -> None:
    tree = ast.parse(source.read_text(), filename=str(source))
    calls = {
        node.func.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    }
    assert calls & IMPURE_CALLS == set()


def test_scan__detects_a_forbidden_import() -> None:
    tree = ast.parse("import flask\nfrom webapp.models import X\nfrom . import types\n")
    assert [m for m in _modules(tree) if m.split(".")[0] in FORBIDDEN] == [
        "flask",
        "webapp.models",
    ]
