"""Override values, expiry, undo and cleanup in the overrides service."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from tests.factories import identities_make_override
from tests.web.identities.conftest import build_world, events, overrides_of, revision
from webapp.clock import utcnow
from webapp.extensions import db
from webapp.models import User
from webapp.services import values
from webapp.services.errors import Conflict, Forbidden, NotFound, ValidationError
from webapp.services.identities import identity_overrides, identity_page

# Database behaviour (expiry queries and cleanup): runs on SQLite and on PostgreSQL.
pytestmark = pytest.mark.databases("sqlite", "postgres")

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "kind", "expected"),
    [
        ("x", "string", "x"),
        (" 12 ", "integer", 12),
        ("-3", "integer", -3),
        ("TRUE", "boolean", True),
        ("[1, 2]", "json", "[1, 2]"),
        ('"s"', "json", '"s"'),
    ],
)
def test_parse_value__kind__gives_typed_value(raw, kind, expected):
    value = values.parse_value(kind, raw, values.FLAG)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        ("1.5", "integer"),
        ("", "integer"),
        ("9" * 30, "integer"),
        ("yes", "boolean"),
        ("{", "json"),
        ("", "json"),
        ("x", "xml"),
        ("z" * 20_001, "string"),
    ],
)
def test_parse_value__invalid__raises(raw, kind):
    with pytest.raises(ValidationError):
        values.parse_value(kind, raw, values.FLAG)


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("", None),
        ("never", None),
        ("1h", NOW + timedelta(hours=1)),
        ("1d", NOW + timedelta(days=1)),
        ("1w", NOW + timedelta(weeks=1)),
    ],
)
def test_expiry_from_choice__presets(choice, expected):
    assert identity_overrides.expiry_from_choice(choice, None, NOW) == expected


def test_expiry_from_choice__custom_naive__is_read_as_utc():
    moment = datetime(2030, 1, 2, 8, 30)
    assert identity_overrides.expiry_from_choice("custom", moment, NOW) == moment.replace(
        tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("choice", "custom"),
    [("custom", None), ("custom", datetime(2029, 1, 1)), ("2h", None)],
)
def test_expiry_from_choice__invalid__raises(choice, custom):
    with pytest.raises(ValidationError):
        identity_overrides.expiry_from_choice(choice, custom, NOW)


def _user(email):
    return db.session.scalar(select(User).where(User.email == email))


def test_toggle_then_undo__restores_and_audits_both(app):
    # Given the QA user toggles dark_mode on their identity
    world = build_world()
    db.session.commit()
    qa = _user("qa@example.com")
    change = identity_overrides.toggle_override(
        qa, world.alice, world.features["dark_mode"], utcnow(), None
    )
    assert change.changed == ["dark_mode"]
    # When they undo it
    undone = identity_overrides.undo_change(qa, world.alice, change.event_id, utcnow())
    # Then there is no override again and both changes are in the log
    assert overrides_of(world.alice) == []
    assert undone.changed == ["dark_mode"]
    assert [e.action for e in events()] == ["toggle", "undo"]


def test_undo__stale__raises_conflict(app):
    world = build_world()
    db.session.commit()
    qa = _user("qa@example.com")
    first = identity_overrides.toggle_override(
        qa, world.alice, world.features["dark_mode"], utcnow(), None
    )
    identity_overrides.toggle_override(qa, world.alice, world.features["dark_mode"], utcnow(), None)
    with pytest.raises(Conflict):
        identity_overrides.undo_change(qa, world.alice, first.event_id, utcnow())


def test_undo__unknown_event__raises_not_found(app):
    world = build_world()
    db.session.commit()
    with pytest.raises(NotFound):
        identity_overrides.undo_change(_user("qa@example.com"), world.alice, 999, utcnow())


def test_set_override_value__qa_on_unlinked__is_forbidden_and_unchanged(app):
    world = build_world()
    db.session.commit()
    before = revision(world.environment)
    with pytest.raises(Forbidden):
        identity_overrides.set_override_value(
            _user("qa@example.com"), world.bob, world.features["welcome"], "x", utcnow(), None
        )
    assert overrides_of(world.bob) == [] and events() == []
    assert revision(world.environment) == before


def test_expired_override__is_ignored_by_evaluation_but_listed(app):
    # Given an override that expired
    world = build_world()
    identities_make_override(
        world.alice, world.features["dark_mode"], True, expires_at=utcnow() - timedelta(minutes=5)
    )
    db.session.commit()
    # When the flags table is built
    [row] = identity_page.flag_rows(world.alice, utcnow(), only={"dark_mode"})
    # Then the flag is inherited and the override is marked expired
    assert (row.enabled, row.source) == (False, "default")
    assert row.override is not None and row.override.expired
    assert row.override.expiry_label == "expired"


def test_toggle__over_an_expired_override__starts_from_the_inherited_state(app):
    world = build_world()
    identities_make_override(
        world.alice, world.features["dark_mode"], False, expires_at=utcnow() - timedelta(minutes=5)
    )
    db.session.commit()
    identity_overrides.toggle_override(
        _user("qa@example.com"), world.alice, world.features["dark_mode"], utcnow(), None
    )
    [override] = overrides_of(world.alice)
    assert override.enabled is True and override.expires_at is None


def test_cleanup_expired__counts_and_records_once(app):
    world = build_world()
    for identity in (world.alice, world.bob):
        identities_make_override(
            identity, world.features["welcome"], True, expires_at=utcnow() - timedelta(days=1)
        )
    db.session.commit()
    assert identity_overrides.cleanup_expired(utcnow()) == 2
    [event] = events()
    assert event.count == 2 and event.environment_id == world.environment.id
    assert event.project_id == world.environment.project_id


def test_describe_state__summarises_for_history():
    assert identity_overrides.describe_state(None) == "no override"
    state = {"enabled": True, "value_type": "integer", "value_text": "3", "expires_at": None}
    assert identity_overrides.describe_state(state) == "on, 3"
