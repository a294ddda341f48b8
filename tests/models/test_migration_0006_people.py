"""0006_people: accounts made before it can still log in, with the session version 0."""

import pytest
from flask_migrate import upgrade
from sqlalchemy import text

from tests.conftest import make_test_app, on_new_postgres_schema
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
    on_new_postgres_schema(_existing_user_survives)
