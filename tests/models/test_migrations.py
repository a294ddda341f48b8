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


def _assert_existing_environments_start_not_production(app):
    """0004 adds ``environments.production``: rows made before it read as not production."""
    with app.app_context():
        upgrade(revision="0003_segment_count_indexes")
        with db.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO organisations (id, name, created_at, updated_at) "
                    "VALUES (1, 'Acme', '2024-01-01', '2024-01-01')"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO projects (id, organisation_id, name, created_at, "
                    "updated_at) VALUES (1, 1, 'Demo', '2024-01-01', '2024-01-01')"
                )
            )
            conn.execute(text(
                "INSERT INTO environments (id, project_id, name, client_key, allow_client_traits,"
                " hide_disabled_flags, revision, revised_at, created_at, updated_at) VALUES "
                "(1, 1, 'Production', 'k1', true, false, 1, '2024-01-01', '2024-01-01', "
                "'2024-01-01')"
            ))  # fmt: skip
        upgrade()
        with db.engine.connect() as conn:
            production = conn.execute(text("SELECT production FROM environments")).scalar()
    assert production is not None and not production


def test_0004_environment_production__existing_rows__default_off__sqlite(tmp_path):
    app = make_test_app(f"sqlite:///{tmp_path / 'old.sqlite'}")
    _assert_existing_environments_start_not_production(app)


def test_0004_environment_production__existing_rows__default_off__postgres():
    require_postgres()
    schema = PostgresSchema()
    with schema.admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema.name}"'))
    app = make_test_app(schema.url)
    try:
        _assert_existing_environments_start_not_production(app)
    finally:
        dispose_engines(app)  # else its pooled connection outlives the suite (conftest check)
        schema.drop()


def test_upgrade__is_repeatable(tmp_path):
    app = make_test_app(f"sqlite:///{tmp_path / 'twice.sqlite'}")
    with app.app_context():
        upgrade()
        upgrade()
        with db.engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
