"""Shared fixtures: the app on SQLite and (when TEST_DATABASE_URL is set) on PostgreSQL.

Which database a test module runs on is its own, visible choice. Every module whose tests
take ``app`` (or ``database``, or anything built on them: ``client``, ``runner``, ``auth``,
the factories' worlds) declares it at the top, and collection fails for a module that does
not::

    # Database behaviour: runs on SQLite and on PostgreSQL.
    pytestmark = pytest.mark.databases("sqlite", "postgres")

    # Pages and rules that do not depend on the database: runs once, on SQLite.
    pytestmark = pytest.mark.databases("sqlite")

The rule: a module is about **database behaviour**, and runs on both, when what it checks
can differ between the two databases: queries and their results (search, paging, counts,
segment SQL translation), constraints and typed storage, locking and concurrency,
migrations, import/export, the SDK read path (its own prepared SQL per database), and
limits where a database refuses what the other takes (NUL, lone surrogates, 64-bit
integers). A module about **pages and rules** (templates, escaping, forms, roles, CSRF,
sessions, audit wording, htmx partials, headers, the CLI's wording) runs once, on SQLite;
the database behaviour under those pages is covered by the modules that run on both. A test
may narrow its module's choice with its own marker (``@pytest.mark.databases("postgres")``
for true concurrency, which SQLite's single writer cannot show).

SQLite tests get a fresh in-memory database (a copy of an empty schema made once per
process). PostgreSQL tests share one schema per test process (each xdist worker has its
own), emptied before each test. A world many tests start from (the hardening walks' above
all) is built once per process and database and restored for the later tests, with
``worlds.restore_or_build(key, build)`` (``tests/worlds.py``): a backup-API copy on SQLite,
snapshot tables in a schema beside the process's own on PostgreSQL (dropped with it). What
an app costs to create but never differs between tests (parsed URL rules, URL builders,
compiled templates, engines and their compiled SQL) is kept per process, and what lives as
long as the process is frozen out of the garbage collector's full collections: see
``tests/speedups.py``. Every engine's connections are closed after its test, pools are
small, and the PostgreSQL connections the suite holds are counted (by ``application_name``):
at most ``MAX_CONNECTIONS_PER_PROCESS`` after any test, none after the suite. The schemas of
a run are dropped at its end even when a worker crashed. Tests marked ``heavy(seconds=N)``
run first (see ``heavy_first``).
"""

from __future__ import annotations

import os
import time
import uuid
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.pool import Pool

from tests import hypothesis_profiles, speedups, worlds
from webapp import create_app
from webapp.extensions import READ_ENGINE_KEY, db

hypothesis_profiles.load()
speedups.remember_url_builders()
speedups.remember_parsed_rules()
speedups.share_engines()
speedups.freeze_long_lived()  # the modules imported so far; the collected tests follow

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL")
REQUIRE_POSTGRES = os.environ.get("FLAGPOST_REQUIRE_POSTGRES") == "1"
NO_POSTGRES_REASON = (
    "PostgreSQL tests need TEST_DATABASE_URL (e.g. postgresql://postgres@127.0.0.1:5432/test)"
)
DATABASES = ("sqlite", "postgres")
# ``make test-quick`` sets sqlite: the PostgreSQL variants are deselected, not skipped.
SELECTED_DATABASES = tuple(
    name.strip()
    for name in os.environ.get("FLAGPOST_TEST_DATABASES", ",".join(DATABASES)).split(",")
    if name.strip()
)
NO_DATABASE_CHOICE = (
    "{module} uses the app/database fixtures but does not say which databases it runs on. "
    "Add at the top of the module either\n"
    '    pytestmark = pytest.mark.databases("sqlite", "postgres")  # database behaviour\n'
    "or\n"
    '    pytestmark = pytest.mark.databases("sqlite")  # pages and rules: runs once\n'
    "(the rule is in tests/conftest.py's docstring and the README's Tests section)."
)
# One run (all xdist workers) shares an id, set by the controlling process before the
# workers start; schemas and connection names carry it, so a run cleans up after itself.
RUN_ID_VARIABLE = "FLAGPOST_TEST_RUN"
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")
# Small pools: a shared server has ~100 connection slots for everyone on it.
TEST_POOL = {"pool_size": 2, "max_overflow": 8, "pool_pre_ping": True}
MAX_CONNECTIONS_PER_PROCESS = 24


# ---- which databases a module runs on -----------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "databases(*names): the databases (sqlite, postgres) this module's app tests run on",
    )
    config.addinivalue_line(
        "markers",
        "heavy(seconds): a long test (about that many seconds), run first so it does not "
        "finish last; the longest start first",
    )
    if not hasattr(config, "workerinput"):  # the controlling process (or the only one)
        os.environ.setdefault(RUN_ID_VARIABLE, uuid.uuid4().hex[:8])


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrise ``database`` from the ``databases`` marker; refuse a module without one."""
    if "database" not in metafunc.fixturenames:
        return
    module = metafunc.definition.getparent(pytest.Module)
    assert module is not None
    if not any(mark.name == "databases" for mark in module.own_markers):
        pytest.fail(NO_DATABASE_CHOICE.format(module=module.nodeid), pytrace=False)
    if _parametrized_by_the_test(metafunc, "database"):
        return  # the test pairs each database with other arguments itself
    marker = metafunc.definition.get_closest_marker("databases")
    assert marker is not None
    names = list(marker.args)
    unknown = [name for name in names if name not in DATABASES]
    if not names or unknown:
        pytest.fail(f"{metafunc.definition.nodeid}: databases{tuple(names)} must name "
                    f"one or both of {DATABASES}", pytrace=False)  # fmt: skip
    metafunc.parametrize("database", names, indirect=True)


def _parametrized_by_the_test(metafunc: pytest.Metafunc, name: str) -> bool:
    for mark in metafunc.definition.iter_markers("parametrize"):
        names = mark.args[0]
        if isinstance(names, str):
            names = [part.strip() for part in names.split(",")]
        if name in names:
            return True
    return False


def pytest_collection_finish(session: pytest.Session) -> None:
    speedups.freeze_long_lived()  # the collected tests live as long as the process


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Under ``--dist loadgroup``, fail a grouped test that xdist did not mark with its group.

    xdist tells its scheduler a test's group by appending ``@group`` to the test's id in each
    worker; when that stops working (pytest 9.2 with pytest-xdist 3.8: pytest-xdist issue
    #1386), the groups are silently spread over the workers, and every worker starts the
    live servers a group was meant to share.
    """
    if not getattr(item.config.option, "loadgroup", False):  # set in xdist's workers
        return
    if item.get_closest_marker("xdist_group") is not None and "@" not in (
        item.nodeid.rsplit("]", 1)[-1]
    ):
        pytest.fail(
            f"--dist loadgroup: xdist did not mark {item.nodeid} with its xdist_group, so "
            "the group is spread over the workers; see "
            "https://github.com/pytest-dev/pytest-xdist/issues/1386 (pytest 9.2)",
            pytrace=False,
        )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect the variants on databases left out of ``FLAGPOST_TEST_DATABASES``; put the
    ``heavy`` tests first."""
    _deselect_databases(config, items)
    items[:] = heavy_first(items)


def heavy_first(items: list[pytest.Item]) -> list[pytest.Item]:
    """Move the tests marked ``heavy`` to the front, longest first (ties in collection order).

    A long test that starts late in an xdist run finishes alone after every other worker is
    done. Under ``--dist loadgroup`` each ungrouped test is its own unit of work; xdist hands
    out the units in collection order, except that it sorts them by size first (stably), so
    ``xdist_group`` units of several tests go out before all single tests. A heavy test thus
    goes to the first worker free after the groups are handed out, at the start of the run.
    (A worker asks for more while it has two or fewer tests queued, so two heavy tests may
    queue on one worker; at the start of a run the short tests even that out.)
    The order depends only on the collection, so every worker collects the same list, as
    xdist requires. A heavy test may not be in an ``xdist_group``: its group would be split
    across the collection, and groups are scheduled first anyway.
    """
    heavy: list[tuple[float, int, pytest.Item]] = []
    rest = []
    for index, item in enumerate(items):
        marker = item.get_closest_marker("heavy")
        if marker is None:
            rest.append(item)
            continue
        seconds = marker.kwargs.get("seconds", marker.args[0] if marker.args else None)
        if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds <= 0:
            pytest.fail(f"{item.nodeid}: write heavy(seconds=N), N its usual duration",
                        pytrace=False)  # fmt: skip
        if item.get_closest_marker("xdist_group") is not None:
            pytest.fail(f"{item.nodeid}: a heavy test may not be in an xdist_group "
                        "(groups are scheduled first anyway)", pytrace=False)  # fmt: skip
        heavy.append((-float(seconds), index, item))
    return [item for _, _, item in sorted(heavy, key=lambda entry: entry[:2])] + rest


def _deselect_databases(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect the variants on databases left out of ``FLAGPOST_TEST_DATABASES``."""
    if set(DATABASES) <= set(SELECTED_DATABASES):
        return
    kept, dropped = [], []
    for item in items:
        params = getattr(item, "callspec", None)
        chosen = params.params.get("database") if params is not None else None
        needs_postgres = item.get_closest_marker("postgres") is not None
        if chosen not in (None, *SELECTED_DATABASES) or (
            needs_postgres and "postgres" not in SELECTED_DATABASES
        ):
            dropped.append(item)
        else:
            kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture
def database(request: pytest.FixtureRequest) -> str:
    """Name the database backend this test runs on (chosen by the ``databases`` marker)."""
    return str(request.param)


# ---- PostgreSQL: schemas, connection names, connection accounting ---------------------------


def run_id() -> str:
    return os.environ.get(RUN_ID_VARIABLE) or "solo"


def connection_name() -> str:
    """The ``application_name`` of this process's test connections."""
    return f"fp_test_{run_id()}_{WORKER}"


def postgres_url_for_schema(schema: str, application_name: str | None = None) -> str:
    """Return TEST_DATABASE_URL for psycopg 3 with ``search_path`` set to ``schema``."""
    assert TEST_DATABASE_URL is not None
    url = TEST_DATABASE_URL.replace("postgresql://", "postgresql+psycopg://", 1)
    url = url.replace("postgres://", "postgresql+psycopg://", 1)
    separator = "&" if "?" in url else "?"
    name = application_name or connection_name()
    return f"{url}{separator}options=-csearch_path%3D{schema}&application_name={name}"


def require_postgres() -> None:
    """Skip (locally) or fail (in CI) when PostgreSQL is not configured."""
    if TEST_DATABASE_URL:
        return
    if REQUIRE_POSTGRES:
        pytest.fail(NO_POSTGRES_REASON)
    pytest.skip(NO_POSTGRES_REASON)


def admin_engine() -> Engine:
    """An engine outside the test schemas, named apart from the connections it counts."""
    return create_engine(
        postgres_url_for_schema("public", f"fp_admin_{run_id()}_{WORKER}"),
        pool_size=1, max_overflow=1,
    )


class PostgresSchema:
    """A throw-away schema for this test process (xdist workers each get their own)."""

    def __init__(self) -> None:
        self.name = f"fp_test_{run_id()}_{WORKER}_{uuid.uuid4().hex[:6]}"
        self.url = postgres_url_for_schema(self.name)
        self.admin = admin_engine()
        self.created = False

    def create(self, app: Flask) -> None:
        with self.admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{self.name}"'))
        with app.app_context():
            db.create_all()
        self.created = True

    def empty(self, app: Flask) -> None:
        """Delete every row and restart every sequence, as a fresh schema would be.

        ``DELETE`` (children first) on the few rows a test leaves is about ten times cheaper
        than ``TRUNCATE``, which rewrites every table's files even when it is empty.
        All the statements go in one string without parameters (one round trip, not one
        per table: psycopg sends it as one simple query).
        """
        with app.app_context(), db.engine.begin() as conn:
            deletes = [f'DELETE FROM "{t.name}"' for t in reversed(db.metadata.sorted_tables)]
            conn.exec_driver_sql(";\n".join([
                *deletes,
                "SELECT setval(c.oid, 1, false) FROM pg_class c"
                " JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE c.relkind = 'S' AND n.nspname = current_schema()",
            ]))  # fmt: skip

    def drop(self) -> None:
        """Drop the schema and the world snapshots kept beside it (``tests/worlds.py``)."""
        with self.admin.begin() as conn:
            snapshots = conn.scalars(
                text("SELECT nspname FROM pg_namespace WHERE nspname LIKE :pattern"),
                {"pattern": worlds.snapshot_schemas_of(self.name)},
            ).all()
            for name in [*snapshots, self.name]:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
        self.admin.dispose()


def on_new_postgres_schema(check: Callable[[Flask], None]) -> None:
    """Run ``check(app)`` on an app over a new, empty PostgreSQL schema (no tables: a
    migration test upgrades it itself), then close the app's connections and drop it."""
    require_postgres()
    schema = PostgresSchema()
    with schema.admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema.name}"'))
    app = make_test_app(schema.url)
    try:
        check(app)
    finally:
        dispose_engines(app)  # else its pooled connection outlives the suite (see above)
        schema.drop()


def held_connections(admin: Engine, pattern: str) -> int:
    """Count the server's connections whose ``application_name`` is LIKE ``pattern``."""
    with admin.connect() as conn:
        return int(conn.scalar(
            text("SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE :name"),
            {"name": pattern},
        ))  # fmt: skip


def wait_for_connections(admin: Engine, pattern: str, at_most: int, seconds: float = 5) -> int:
    """Wait until at most ``at_most`` connections match (a closed one takes a moment to go
    from pg_stat_activity); return the last count."""
    deadline = time.monotonic() + seconds
    while True:
        count = held_connections(admin, pattern)
        if count <= at_most or time.monotonic() > deadline:
            return count
        time.sleep(0.05)


@pytest.fixture(scope="session")
def postgres_schema() -> Iterator[PostgresSchema]:
    require_postgres()
    schema = PostgresSchema()
    yield schema
    schema.drop()


@pytest.fixture(scope="session", autouse=True)
def postgres_connections_return() -> Iterator[None]:
    """After this process's tests, none of its PostgreSQL connections is left open."""
    yield
    speedups.dispose_shared_engines()
    if not TEST_DATABASE_URL:
        return
    admin = admin_engine()
    try:
        left = wait_for_connections(admin, connection_name(), at_most=0)
    finally:
        admin.dispose()
    assert left == 0, f"{left} PostgreSQL connections named {connection_name()} outlived the suite"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """In the controlling process: drop the run's schemas (a crashed worker leaves its own)
    and check that the run holds no connection any more."""
    if hasattr(session.config, "workerinput") or not TEST_DATABASE_URL:
        return
    admin = admin_engine()
    try:
        with admin.begin() as conn:
            schemas = conn.scalars(
                text("SELECT nspname FROM pg_namespace WHERE nspname LIKE :prefix"),
                {"prefix": f"fp\\_test\\_{run_id()}\\_%"},
            ).all()
            for name in schemas:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
        left = wait_for_connections(admin, f"fp\\_test\\_{run_id()}\\_%", at_most=0)
    finally:
        admin.dispose()
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if left:
        if reporter is not None:
            reporter.write_line(f"FAILED: {left} PostgreSQL connections of run {run_id()} "
                                "outlived the suite", red=True)  # fmt: skip
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


# ---- apps and their engines ---------------------------------------------------------------

# Connections the SDK read path detached from its engine's pool (a free list of its own):
# disposing the engine does not close them, so the fixtures do.
_DETACHED: weakref.WeakSet[Any] = weakref.WeakSet()


@event.listens_for(Pool, "detach")
def _remember_detached(dbapi_connection: Any, _record: Any) -> None:
    _DETACHED.add(dbapi_connection)


def dispose_engines(app: Flask) -> None:
    """Close every connection ``app``'s engines hold: the main one and the SDK read one."""
    with app.app_context():
        db.session.remove()
        for engine in db.engines.values():
            engine.dispose()
    read: Engine | None = app.extensions.pop(READ_ENGINE_KEY, None)
    if read is not None:
        read.dispose()
    for connection in list(_DETACHED):
        if not getattr(connection, "closed", True):
            connection.close()


def make_test_app(database_uri: str, **overrides: Any) -> Flask:
    """Create an app for tests: no instance folder reads, CSRF off unless asked for.

    On PostgreSQL the engine's pool is small (``TEST_POOL``); pass
    ``SQLALCHEMY_ENGINE_OPTIONS`` to change it.
    """
    config: dict[str, Any] = {
        "TESTING": True,
        "SECRET_KEY": "test-secret-key",
        "SQLALCHEMY_DATABASE_URI": database_uri,
        "WTF_CSRF_ENABLED": False,
        # SDK events are written by flush() in tests, never by a background thread.
        "EVENTS_FLUSH_SECONDS": 0,
        # Usage is written by an explicit ``usage.flush()``, never by a background thread.
        "USAGE_FLUSH_INTERVAL": None,
    }
    if database_uri.startswith("postgresql"):
        config["SQLALCHEMY_ENGINE_OPTIONS"] = dict(TEST_POOL)
    config.update(overrides)
    application = create_app(config)
    application.jinja_env.bytecode_cache = speedups.TEMPLATE_BYTECODE
    return application


def served_app(
    database: str, request: pytest.FixtureRequest, sqlite_path: Any, **overrides: Any
) -> Flask:
    """Create an app with an empty schema for a real HTTP server in another thread: a file
    database on SQLite (an in-memory one lives on one connection), the test process's own
    schema on PostgreSQL. Dispose it with ``dispose_engines`` when the server stops."""
    if database == "sqlite":
        application = make_test_app(f"sqlite:///{sqlite_path}", **overrides)
        with application.app_context():
            db.create_all()
        return application
    schema: PostgresSchema = request.getfixturevalue("postgres_schema")
    application = make_test_app(schema.url, **overrides)
    if schema.created:
        schema.empty(application)
    else:
        schema.create(application)
    return application


@pytest.fixture
def app_config() -> dict[str, Any]:
    """Extra configuration for the ``app`` fixture; override in a module to change it."""
    return {}


@pytest.fixture
def app(
    database: str, request: pytest.FixtureRequest, app_config: dict[str, Any]
) -> Iterator[Flask]:
    """The application, on the backend named by ``database``, with an empty schema."""
    schema: PostgresSchema | None = None
    if database == "sqlite":
        with speedups.shared_engines():
            application = make_test_app("sqlite://", **app_config)
        speedups.create_sqlite_schema(application)
    else:
        schema = request.getfixturevalue("postgres_schema")
        with speedups.shared_engines():
            application = make_test_app(schema.url, **app_config)
        if schema.created:
            schema.empty(application)
        else:
            schema.create(application)
    with application.app_context():
        yield application
    dispose_engines(application)
    if schema is not None:
        held = held_connections(schema.admin, connection_name())
        assert held <= MAX_CONNECTIONS_PER_PROCESS, (
            f"this test process holds {held} PostgreSQL connections after the test "
            f"(at most {MAX_CONNECTIONS_PER_PROCESS}): an engine or connection was not closed"
        )


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


def eventually(check: Callable[[], Any], seconds: float = 10, message: str = "") -> Any:
    """Return ``check()`` once it is truthy; fail after ``seconds``. For conditions another
    thread or process makes true (a live server, a second connection), never a fixed wait."""
    deadline = time.monotonic() + seconds
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            assert result, message or f"{check} never became true within {seconds} s"
            return result
        time.sleep(0.01)
