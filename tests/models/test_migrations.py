"""The Alembic migrations build the schema the models describe, on both databases."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import upgrade
from sqlalchemy import inspect, text

from tests.conftest import make_test_app, on_new_postgres_schema
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
    def check(app):
        _assert_upgrade_matches_models(app)
        with app.app_context(), db.engine.connect() as conn:
            version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        assert version is not None

    on_new_postgres_schema(check)


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
    on_new_postgres_schema(_assert_existing_environments_start_not_production)


def test_upgrade__is_repeatable(tmp_path):
    app = make_test_app(f"sqlite:///{tmp_path / 'twice.sqlite'}")
    with app.app_context():
        upgrade()
        upgrade()
        with db.engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1


SEEN_ROWS = [
    # identity, feature, variant, enabled, value type, value text, last seen
    (1, 1, "", True, "integer", "5", "2026-12-01 10:00:00.000000"),
    (2, 1, "", True, "integer", "5", "2026-12-01 18:00:00.000000"),
    (3, 1, "", True, "string", "5", "2026-12-01 12:00:00.000000"),
    (1, 2, "a", False, "null", None, "2026-11-30 09:00:00.000000"),
]


def _assert_0011_backfills_served_states_from_flag_seen(app):
    """0011 fills flag_values_daily from flag_seen: a row per feature, day of last seen and
    state, counting the identities, keyed like the app keys states."""
    from datetime import UTC, datetime

    from sqlalchemy import select

    from webapp.models import FlagValuesDaily, state_key

    with app.app_context():
        upgrade(revision="0010_experiments")
        stamp = "'2024-01-01'"
        with db.engine.begin() as conn:
            conn.execute(text(
                f"INSERT INTO organisations (id, name, created_at, updated_at) "
                f"VALUES (1, 'Acme', {stamp}, {stamp})"
            ))
            conn.execute(text(
                f"INSERT INTO projects (id, organisation_id, name, created_at, updated_at) "
                f"VALUES (1, 1, 'Demo', {stamp}, {stamp})"
            ))
            conn.execute(text(
                "INSERT INTO environments (id, project_id, name, client_key, allow_client_traits,"
                " hide_disabled_flags, revision, revised_at, production, created_at, updated_at)"
                f" VALUES (1, 1, 'Production', 'k1', true, false, 1, {stamp}, false, {stamp},"
                f" {stamp})"
            ))
            for feature_id, name in ((1, "limit"), (2, "dark")):
                conn.execute(text(
                    "INSERT INTO features (id, project_id, name, type, description,"
                    " server_key_only, created_at, updated_at) VALUES"
                    f" ({feature_id}, 1, '{name}', 'STANDARD', '', false, {stamp}, {stamp})"
                ))
            for identity_id in (1, 2, 3):
                conn.execute(text(
                    "INSERT INTO identities (id, environment_id, identifier, identifier_hash,"
                    " identifier_prefix, created_at, last_seen_at) VALUES"
                    f" ({identity_id}, 1, 'u{identity_id}', 'h{identity_id}', 'u{identity_id}',"
                    f" {stamp}, {stamp})"
                ))
            for row in SEEN_ROWS:
                conn.execute(
                    text(
                        "INSERT INTO flag_seen (identity_id, feature_id, variant, environment_id,"
                        " enabled, first_seen_at, last_seen_at, value_type, value_text) VALUES"
                        " (:i, :f, :v, 1, :e, :first, :last, :t, :x)"
                    ),
                    dict(zip("ifvetxl", row, strict=True), first="2026-11-01 00:00:00.000000",
                         last=row[6]),
                )  # fmt: skip
        upgrade()
        found = sorted(
            (r.feature_id, r.day, r.state_key, r.enabled, r.value, r.count, r.first_at, r.last_at)
            for r in db.session.scalars(select(FlagValuesDaily))
        )
        db.session.remove()

    def at(text_: str) -> datetime:
        return datetime.fromisoformat(text_).replace(tzinfo=UTC)

    day = at("2026-12-01")
    assert found == sorted([
        (1, day, state_key(True, "integer", "5"), True, 5, 2,
         at("2026-12-01 10:00"), at("2026-12-01 18:00")),
        (1, day, state_key(True, "string", "5"), True, "5", 1,
         at("2026-12-01 12:00"), at("2026-12-01 12:00")),
        (2, at("2026-11-30"), state_key(False, "null", None), False, None, 1,
         at("2026-11-30 09:00"), at("2026-11-30 09:00")),
    ])  # fmt: skip
    assert [type(r[4]) for r in found] == [int, str, type(None)]


def test_0011_flag_values_daily__backfilled_from_flag_seen__sqlite(tmp_path):
    app = make_test_app(f"sqlite:///{tmp_path / 'seen.sqlite'}")
    _assert_0011_backfills_served_states_from_flag_seen(app)


def test_0011_flag_values_daily__backfilled_from_flag_seen__postgres():
    on_new_postgres_schema(_assert_0011_backfills_served_states_from_flag_seen)
