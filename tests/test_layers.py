"""Layering, checked on the source: pages (blueprints) reach the data model only through services.

An ``ast`` scan, so relative imports (``from ...models import X``) count as much as absolute ones.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BLUEPRINTS = sorted((ROOT / "webapp" / "blueprints").rglob("*.py"))


def imported_modules(source: Path) -> list[str]:
    """Name every module ``source`` imports from, relative imports resolved."""
    relative = source.relative_to(ROOT).with_suffix("")
    package = list(relative.parts if relative.name == "__init__" else relative.parts[:-1])
    package = [p for p in package if p != "__init__"]
    names = []
    for node in ast.walk(ast.parse(source.read_text(), filename=str(source))):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            names.append(module)
            names.extend(f"{module}.{alias.name}" for alias in node.names)
    return names


def test_blueprints__are_found():
    assert len(BLUEPRINTS) >= 10


@pytest.mark.parametrize("source", BLUEPRINTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_blueprint__imports_no_model(source: Path):
    models = [m for m in imported_modules(source) if m.split(".")[:2] == ["webapp", "models"]]
    assert models == [], f"{source.name} imports {models}; go through a service"


def test_scan__resolves_relative_imports():
    # Given a page module two packages deep importing the models relatively
    source = ROOT / "webapp" / "blueprints" / "identities" / "common.py"
    # When its imports are resolved
    found = imported_modules(source)
    # Then they name absolute modules (a relative models import would be caught)
    assert "webapp.services.identities.editing_rights" in found
    assert all(not name.startswith(".") for name in found)
