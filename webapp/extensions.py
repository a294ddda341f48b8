"""Flask extension singletons, bound to the app in ``create_app``."""

import sqlite3
from typing import TYPE_CHECKING, Any

from flask import current_app
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import MetaData, create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase

# Named constraints keep Alembic migrations deterministic on SQLite and PostgreSQL alike.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()


@event.listens_for(Engine, "connect")
def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    """Turn on SQLite's foreign keys and WAL so several workers can share one file."""
    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


# Flask-SQLAlchemy builds ``db.Model`` at run time, which type checkers cannot see through;
# models subclass ``Model`` so mypy checks them against the declarative base instead.
if TYPE_CHECKING:
    Model = Base
else:
    Model = db.Model


READ_ENGINE_KEY = "flagpost_read_engine"


def read_engine() -> Engine:
    """Return the engine for single-statement reads on the SDK hot path.

    On PostgreSQL this is a second pool in autocommit mode without pre-ping: one round trip
    per read instead of up to four (ping, BEGIN, SELECT, ROLLBACK). Callers retry once on a
    dead connection instead of pinging first. SQLite uses the main engine (in-memory test
    databases exist only on its connection, and a file has nothing to ping).
    """
    engine = db.engine
    if engine.dialect.name == "sqlite":
        return engine
    extensions = current_app.extensions
    cached: Engine | None = extensions.get(READ_ENGINE_KEY)
    if cached is None or cached.url != engine.url:
        # Autocommit leaves no transaction to roll back when a connection is returned.
        cached = create_engine(
            engine.url, isolation_level="AUTOCOMMIT", pool_pre_ping=False,
            pool_reset_on_return=None,
        )
        extensions[READ_ENGINE_KEY] = cached
    return cached
