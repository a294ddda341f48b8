"""Shared fixtures: the app on SQLite and (when TEST_DATABASE_URL is set) on PostgreSQL.

Every test that takes ``app`` runs once per database. SQLite tests get a fresh in-memory
database; PostgreSQL tests share one schema per test process, emptied before each test.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text

from webapp import create_app
from webapp.extensions import db

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL")
REQUIRE_POSTGRES = os.environ.get("FLAGPOST_REQUIRE_POSTGRES") == "1"
NO_POSTGRES_REASON = (
    "PostgreSQL tests need TEST_DATABASE_URL (e.g. postgresql://postgres@127.0.0.1:5432/test)"
)


def postgres_url_for_schema(schema: str) -> str:
    """Return TEST_DATABASE_URL for psycopg 3 with ``search_path`` set to ``schema``."""
    assert TEST_DATABASE_URL is not None
    url = TEST_DATABASE_URL.replace("postgresql://", "postgresql+psycopg://", 1)
    url = url.replace("postgres://", "postgresql+psycopg://", 1)
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options=-csearch_path%3D{schema}"


def require_postgres() -> None:
    """Skip (locally) or fail (in CI) when PostgreSQL is not configured."""
    if TEST_DATABASE_URL:
        return
    if REQUIRE_POSTGRES:
        pytest.fail(NO_POSTGRES_REASON)
    pytest.skip(NO_POSTGRES_REASON)


class PostgresSchema:
    """A throw-away schema for this test process (xdist workers each get their own)."""

    def __init__(self) -> None:
        self.name = f"fp_test_{uuid.uuid4().hex[:10]}"
        self.url = postgres_url_for_schema(self.name)
        self.admin = create_engine(postgres_url_for_schema("public"))
        self.created = False

    def create(self, app: Flask) -> None:
        with self.admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{self.name}"'))
        with app.app_context():
            db.create_all()
        self.created = True

    def empty(self, app: Flask) -> None:
        tables = ", ".join(f'"{t.name}"' for t in db.metadata.sorted_tables)
        with app.app_context(), db.engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))

    def drop(self) -> None:
        with self.admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{self.name}" CASCADE'))
        self.admin.dispose()


@pytest.fixture(scope="session")
def postgres_schema() -> Iterator[PostgresSchema]:
    require_postgres()
    schema = PostgresSchema()
    yield schema
    schema.drop()


def make_test_app(database_uri: str, **overrides: Any) -> Flask:
    """Create an app for tests: no instance folder reads, CSRF off unless asked for."""
    config = {
        "TESTING": True,
        "SECRET_KEY": "test-secret-key",
        "SQLALCHEMY_DATABASE_URI": database_uri,
        "WTF_CSRF_ENABLED": False,
    }
    config.update(overrides)
    return create_app(config)


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest) -> str:
    """Name the database backend this test runs on."""
    return str(request.param)


@pytest.fixture
def app_config() -> dict[str, Any]:
    """Extra configuration for the ``app`` fixture; override in a module to change it."""
    return {}


@pytest.fixture
def app(
    database: str, request: pytest.FixtureRequest, app_config: dict[str, Any]
) -> Iterator[Flask]:
    """The application, on the backend named by ``database``, with an empty schema."""
    if database == "sqlite":
        application = make_test_app("sqlite://", **app_config)
        with application.app_context():
            db.create_all()
    else:
        schema: PostgresSchema = request.getfixturevalue("postgres_schema")
        application = make_test_app(schema.url, **app_config)
        if schema.created:
            schema.empty(application)
        else:
            schema.create(application)
    with application.app_context():
        yield application
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> Any:
    return app.test_cli_runner()


class AuthActions:
    """Log in and out through the real forms."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client

    def login(self, email: str, password: str = "password123", **kwargs: Any) -> Any:
        return self.client.post("/login", data={"email": email, "password": password}, **kwargs)

    def logout(self) -> Any:
        return self.client.post("/logout")


@pytest.fixture
def auth(client: FlaskClient) -> AuthActions:
    return AuthActions(client)
