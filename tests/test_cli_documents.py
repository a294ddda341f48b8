"""The flask commands import-environment and export-environment."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from webapp.extensions import db
from webapp.models import Environment, Feature
from webapp.services import documents

# Database behaviour (import and export): runs on SQLite and on PostgreSQL.
pytestmark = pytest.mark.databases("sqlite", "postgres")

RICH = Path(__file__).resolve().parent / "data" / "flagsmith_environment_rich.json"
RICH_KEY = "B62qaMZNwfiqT76p38ggrQ"


def test_import_environment__creates_the_environment(runner):
    # When
    result = runner.invoke(args=["import-environment", str(RICH)])

    # Then
    assert result.exit_code == 0, result.output
    assert f"Created environment 'Production' ({RICH_KEY})" in result.output
    assert "9 feature states" in result.output
    environment = db.session.scalar(select(Environment))
    assert environment.client_key == RICH_KEY
    assert environment.project.organisation.name == "Imported"


def test_import_environment__organisation_option__names_the_organisation(runner):
    result = runner.invoke(args=["import-environment", str(RICH), "--organisation", "Acme"])
    assert result.exit_code == 0, result.output
    assert db.session.scalar(select(Environment)).project.organisation.name == "Acme"


def test_import_environment__twice__reports_an_update(runner):
    runner.invoke(args=["import-environment", str(RICH)])
    result = runner.invoke(args=["import-environment", str(RICH)])
    assert result.exit_code == 0, result.output
    assert "Updated environment 'Production'" in result.output
    assert db.session.scalar(select(func.count(Environment.id))) == 1


def test_import_environment__production_option__sets_it_and_a_plain_import_keeps_it(runner):
    def production() -> bool:
        db.session.expire_all()
        return db.session.scalar(select(Environment)).production

    # A new environment is not production unless asked
    assert runner.invoke(args=["import-environment", str(RICH)]).exit_code == 0
    assert production() is False
    result = runner.invoke(args=["import-environment", str(RICH), "--production"])
    assert "It is a production environment." in result.output
    assert production() is True
    # The document has no such field: importing it again keeps the setting
    assert runner.invoke(args=["import-environment", str(RICH)]).exit_code == 0
    assert production() is True
    assert runner.invoke(args=["import-environment", str(RICH), "--not-production"]).exit_code == 0
    assert production() is False


def test_import_environment__bad_document__fails_naming_the_field(runner, tmp_path):
    # Given
    doc = json.loads(RICH.read_text())
    doc["feature_states"][3]["feature"]["name"] = 12
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))

    # When
    result = runner.invoke(args=["import-environment", str(path)])

    # Then
    assert result.exit_code != 0
    assert "feature_states[3].feature.name: expected a string" in result.output
    assert db.session.scalar(select(func.count(Feature.id))) == 0


def test_import_environment__not_json__fails(runner, tmp_path):
    path = tmp_path / "broken.json"
    path.write_text("{ nope")
    result = runner.invoke(args=["import-environment", str(path)])
    assert result.exit_code != 0
    assert "not a JSON document" in result.output


def test_export_environment__stdout__sorted_pretty_json(runner):
    # Given
    runner.invoke(args=["import-environment", str(RICH)])

    # When
    result = runner.invoke(args=["export-environment", RICH_KEY])

    # Then
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc == documents.export_environment(RICH_KEY)
    assert result.output == json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def test_export_environment__output_file(runner, tmp_path):
    # Given
    runner.invoke(args=["import-environment", str(RICH)])
    path = tmp_path / "out.json"

    # When
    result = runner.invoke(args=["export-environment", RICH_KEY, "-o", str(path)])

    # Then
    assert result.exit_code == 0, result.output
    assert json.loads(path.read_text())["api_key"] == RICH_KEY


def test_export_then_import__round_trips_through_files(runner, tmp_path):
    # Given
    runner.invoke(args=["import-environment", str(RICH)])
    path = tmp_path / "out.json"
    runner.invoke(args=["export-environment", RICH_KEY, "-o", str(path)])
    first = path.read_text()

    # When
    result = runner.invoke(args=["import-environment", str(path)])
    runner.invoke(args=["export-environment", RICH_KEY, "-o", str(path)])

    # Then: only the revision time moved
    assert result.exit_code == 0, result.output
    strip = lambda text: {k: v for k, v in json.loads(text).items() if k != "updated_at"}  # noqa: E731
    assert strip(path.read_text()) == strip(first)


def test_export_environment__unknown_key__fails(runner):
    result = runner.invoke(args=["export-environment", "missing"])
    assert result.exit_code != 0
    assert "No environment has this key" in result.output
