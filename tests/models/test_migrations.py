"""The Alembic migrations build the schema the models describe, on both databases."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import upgrade
from sqlalchemy import create_engine, inspect, text

from tests.conftest import PostgresSchema, dispose_engines, make_test_app, require_postgres
from webapp.extensions import db


def _assert_upgrade_matches_models(app):
    with app.app_context():
        upgrade()
        with db.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            diff = compare_metadata(context, db.metadata)
            tables = set(inspect(connection).get_table_names())
    assert diff == [], f"models and migrations disagree: {diff}"
    assert {t.name for t in db.metadata.sorted_tables} | {"alembic_version"} == tables


def test_upgrade_from_empty__sqlite(tmp_path):
    app = make_test_app(f"sqlite:///{tmp_path / 'migrated.sqlite'}")
    _assert_upgrade_matches_models(app)


@pytest.mark.postgres
def test_upgrade_from_empty__postgres():
    require_postgres()
    schema = PostgresSchema()
    with schema.admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema.name}"'))
    app = make_test_app(schema.url)
    try:
        _assert_upgrade_matches_models(app)
        engine = create_engine(schema.url)
        with engine.connect() as conn:
            version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        engine.dispose()
        assert version is not None
    finally:
        dispose_engines(app)
        schema.drop()


def test_upgrade__is_repeatable(tmp_path):
    app = make_test_app(f"sqlite:///{tmp_path / 'twice.sqlite'}")
    with app.app_context():
        upgrade()
        upgrade()
        with db.engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
