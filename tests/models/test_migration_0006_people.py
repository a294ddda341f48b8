"""0006_people: accounts made before it can still log in, with the session version 0."""

import pytest
from flask_migrate import upgrade
from sqlalchemy import text

from tests.conftest import PostgresSchema, dispose_engines, make_test_app, require_postgres
from webapp.extensions import db


def _existing_user_survives(app):
    with app.app_context():
        upgrade(revision="0005_trait_column_defaults")
        with db.engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO users (id, email, password_hash, active, created_at, preferences) "
                "VALUES (1, 'old@example.com', 'x', true, '2024-01-01', '{}')"
            ))  # fmt: skip
        upgrade()
        with db.engine.connect() as conn:
            row = conn.execute(
                text("SELECT invitation_pending, session_version FROM users")
            ).one()
    assert (bool(row[0]), row[1]) == (False, 0)
    assert type(row[1]) is int


def test_0006_people__existing_accounts__not_pending_version_zero__sqlite(tmp_path):
    _existing_user_survives(make_test_app(f"sqlite:///{tmp_path / 'old.sqlite'}"))


@pytest.mark.postgres
def test_0006_people__existing_accounts__not_pending_version_zero__postgres():
    require_postgres()
    schema = PostgresSchema()
    with schema.admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema.name}"'))
    app = make_test_app(schema.url)
    try:
        _existing_user_survives(app)
    finally:
        dispose_engines(app)
        schema.drop()
