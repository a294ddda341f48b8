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


def _modules(tree: ast.AST, package: str = "webapp.evaluation") -> list[str]:
    """Name every module imported, relative imports resolved against ``package``.

    Imports inside the evaluation package itself are left out: they are the package.
    """
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                names.append(node.module or "")
                continue
            parts = package.split(".")
            if node.level > len(parts):  # above the top-level package: not importable
                names.append(".")
                continue
            base = parts[: len(parts) - (node.level - 1)]
            names.append(".".join(base + ([node.module] if node.module else [])))
    return [n for n in names if n != package and not n.startswith(package + ".")]


SOURCES = sorted(PACKAGE.rglob("*.py"))


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
        if name.split(".")[0] in FORBIDDEN or name.split(".")[0] in IMPURE_MODULES or name == "."
    ]

    # Then (imports inside the package are fine)
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


@pytest.mark.parametrize(
    ("source", "found"),
    [
        ("import flask", ["flask"]),
        ("from webapp.models import X", ["webapp.models"]),
        ("from ..models import X", ["webapp.models"]),
        ("from .. import extensions", ["webapp"]),
        ("from ...x import y", ["."]),
        ("from . import types", []),
        ("from .types import Rule", []),
        ("from webapp.evaluation.types import Rule", []),
    ],
)
def test_scan__resolves_absolute_and_relative_imports(source: str, found: list[str]) -> None:
    assert _modules(ast.parse(source)) == found
