"""Prepared reads on the SDK hot path: detached connections survive server-side disconnects."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from tests.factories import make_environment, make_identity, make_project
from webapp.extensions import db, read_engine
from webapp.services.sdk import fastread, sdk_service

# The detached free list is PostgreSQL's alone (SQLite reads use the engine's pool).
pytestmark = pytest.mark.databases("postgres")


@pytest.fixture
def stored(app):
    environment = make_environment(make_project())
    make_identity(environment, "alice", {"plan": "pro"})
    db.session.commit()
    environment_id = environment.id
    db.session.close()  # the read must take the fast path, not the session's connection
    return environment_id


def _idle(engine):
    return fastread._free_list(engine).idle


def test_load_identity__reuses_one_detached_connection(stored):
    # Given a first read, which leaves its connection on the free list
    assert sdk_service.read_stored_identity(stored, "alice").traits == {"plan": "pro"}
    engine = read_engine()
    (first,) = _idle(engine)
    # When reading again
    assert sdk_service.read_stored_identity(stored, "alice").traits == {"plan": "pro"}
    # Then the same connection served it and went back to the list
    assert _idle(engine) == [first]


def test_load_identity__after_server_killed_every_connection__reconnects(stored):
    # Given idle connections whose server processes are terminated
    sdk_service.read_stored_identity(stored, "alice")
    engine = read_engine()
    pids = [connection.info.backend_pid for connection, _ in _idle(engine)]
    assert pids
    with db.engine.connect() as admin:
        for pid in pids:
            admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        admin.commit()
    # When the next read runs
    found = sdk_service.read_stored_identity(stored, "alice")
    # Then it retried on a fresh connection and the dead ones are gone
    assert found.traits == {"plan": "pro"}
    assert all(connection.info.backend_pid not in pids for connection, _ in _idle(engine))


def test_free_list__after_fork__never_reuses_the_parents_connections(stored, monkeypatch):
    # Given a connection on the free list
    sdk_service.read_stored_identity(stored, "alice")
    engine = read_engine()
    (inherited,) = _idle(engine)
    # When the process id changes (as in a forked worker)
    monkeypatch.setattr(fastread.os, "getpid", lambda: -1)
    sdk_service.read_stored_identity(stored, "alice")
    # Then the child opened its own connection and kept the parent's out of use
    assert inherited not in _idle(engine) and inherited in fastread._INHERITED
    assert not inherited[0].closed
