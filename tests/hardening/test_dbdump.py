"""The walks' database helpers: ``restore`` puts a dump back, and skips the work only when
``changes_mark`` says nothing was written since (``tests/hardening/dbdump.py``).

A skipped restore that should not have been would let one case's changes leak into the
next case's "nothing changed" check, so every kind of write must move the mark.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask
from sqlalchemy import text

from tests.factories import make_feature, make_project
from tests.hardening.dbdump import changes_mark, dump, restore
from webapp.extensions import db

# The mark is a query per database (md5 of rows on PostgreSQL, a write counter on SQLite).
pytestmark = pytest.mark.databases("sqlite", "postgres")


WRITES: dict[str, Callable[[], None]] = {
    "insert": lambda: make_project("Second"),
    "update": lambda: db.session.execute(text("UPDATE projects SET name = 'Renamed'")),
    "delete": lambda: db.session.execute(text("DELETE FROM features")),
}


@pytest.mark.parametrize("write", sorted(WRITES))
def test_restore__after_a_write__puts_the_dump_back(app: Flask, write: str) -> None:
    # Given a dump and the mark of a database with rows
    project = make_project("Demo")
    make_feature(project, "banner")
    db.session.commit()
    before, mark = dump(), changes_mark()

    # When a row is written (and committed)
    WRITES[write]()
    db.session.commit()

    # Then the mark moved, and restoring with it puts every row back
    assert changes_mark() != mark, f"{write}: the mark did not move"
    new_mark = restore(before, mark)
    assert dump() == before
    assert new_mark == changes_mark()


def test_restore__nothing_written__leaves_the_tables_and_keeps_the_mark(app: Flask) -> None:
    # Given a dump and its mark
    make_feature(make_project("Demo"), "banner")
    db.session.commit()
    before, mark = dump(), changes_mark()

    # When nothing is written (only read)
    db.session.execute(text("SELECT count(*) FROM projects"))
    db.session.rollback()

    # Then the mark holds and a restore with it is a no-op
    assert changes_mark() == mark
    assert restore(before, mark) == mark
    assert dump() == before


def test_restore__without_a_mark__always_restores(app: Flask) -> None:
    make_feature(make_project("Demo"), "banner")
    db.session.commit()
    before = dump()
    db.session.execute(text("UPDATE features SET name = 'changed'"))
    db.session.commit()

    assert restore(before) is None

    assert dump() == before


def test_changes_mark__an_insert_rolled_back__moves_it(app: Flask) -> None:
    """The rows are as before, but an id was used (the next insert gets another one), so a
    restore must run to set the id counters back."""
    make_feature(make_project("Demo"), "banner")
    db.session.commit()
    mark = changes_mark()

    make_project("Gone")
    db.session.flush()
    db.session.rollback()

    assert changes_mark() != mark
