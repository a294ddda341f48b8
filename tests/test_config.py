"""Configuration precedence and secrets."""

import os
import stat

from webapp import config, create_app


def test_secret_key__generated_once_into_the_instance_folder(tmp_path):
    first = config.load_or_create_secret_key(str(tmp_path))
    second = config.load_or_create_secret_key(str(tmp_path))
    assert first == second and len(first) >= 40
    mode = stat.S_IMODE(os.stat(tmp_path / "secret_key").st_mode)
    assert mode == 0o600


def test_secret_key__differs_between_instances(tmp_path):
    one = config.load_or_create_secret_key(str(tmp_path / "a"))
    two = config.load_or_create_secret_key(str(tmp_path / "b"))
    assert one != two


def test_environment_variables__override_defaults():
    found = config.from_environment(
        {"DATABASE_URL": "postgres://u@h/db", "PORT": "8080", "SESSION_COOKIE_SECURE": "true"}
    )
    assert found == {
        "DATABASE_URL": "postgres://u@h/db",
        "PORT": 8080,
        "SESSION_COOKIE_SECURE": True,
    }


def test_database_url__uses_psycopg3():
    assert config.normalise_database_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert config.normalise_database_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert config.normalise_database_url("sqlite:///x.db") == "sqlite:///x.db"


def test_create_app__database_url_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'env.sqlite'}")
    app = create_app({"SECRET_KEY": "x"})
    assert app.config["SQLALCHEMY_DATABASE_URI"].endswith("env.sqlite")


def test_create_app__overrides_win_over_environment(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "sqlite:///ignored.sqlite")
    app = create_app({"SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": "sqlite://"})
    assert app.config["SQLALCHEMY_DATABASE_URI"] == "sqlite://"


def test_session_cookie__is_httponly_and_lax():
    app = create_app({"SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": "sqlite://"})
    assert app.config["SESSION_COOKIE_HTTPONLY"] is True
    assert app.config["SESSION_COOKIE_SAMESITE"] == "Lax"
