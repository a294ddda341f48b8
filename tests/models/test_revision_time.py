"""An environment's ``revised_at`` (the document's ``updated_at``) never goes back.

The SDKs keep a stream event only when its ``updated_at`` is newer than their document's:
a bump that left an earlier time than one already committed would lose a change.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask

from tests.factories import make_environment, make_project
from webapp.clock import utcnow
from webapp.extensions import db
from webapp.models import Environment

# Database behaviour (the time is computed in SQL on PostgreSQL): both databases.
pytestmark = pytest.mark.databases("sqlite", "postgres")


def test_bump_revision__later_time_already_committed__kept_and_passed(
    app: Flask, database: str
) -> None:
    # Given: another change committed a revised_at later than this process's clock
    env = make_environment(make_project("Demo"), "Development")
    db.session.commit()
    later = utcnow() + timedelta(hours=1)
    env.revised_at = later
    db.session.commit()
    revision = env.revision

    # When: this process bumps with its (earlier) clock
    env.bump_revision()
    db.session.commit()

    # Then: on PostgreSQL the time moves past the committed one; SQLite (one writer at a
    # time, so no concurrent bump) takes the clock
    stored = db.session.get(Environment, env.id)
    assert stored is not None and stored.revision == revision + 1
    if database == "postgres":
        assert stored.revised_at > later
    else:
        assert stored.revised_at < later


def test_bump_revision__ordinary_change__time_is_now(app: Flask) -> None:
    # Given
    env = make_environment(make_project("Demo"), "Development")
    db.session.commit()
    before = utcnow()

    # When
    env.bump_revision()
    db.session.commit()

    # Then
    assert before <= env.revised_at <= utcnow()
