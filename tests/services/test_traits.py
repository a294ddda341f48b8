"""Trait parsing and the trait service (type inference, limits, re-evaluation report)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.web.identities.conftest import build_world
from webapp.clock import utcnow
from webapp.extensions import db
from webapp.models import User
from webapp.services import values
from webapp.services.errors import Forbidden, NotFound, ValidationError
from webapp.services.identities import traits

# Database behaviour (typed trait storage and limits): runs on SQLite and on PostgreSQL.
pytestmark = pytest.mark.databases("sqlite", "postgres")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("42", 42),
        ("-7", -7),
        ("007", 7),
        ("4.5", 4.5),
        ("1e3", 1000.0),
        ("true", True),
        ("FALSE", False),
        ("pro", "pro"),
        ("1_000", "1_000"),
        ("nan", "nan"),
        ("inf", "inf"),
        ("", ""),
        (" 3 ", 3),
    ],
)
def test_infer_value__text__gets_the_natural_type(raw, expected):
    value = values.infer_value(raw)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize(
    ("raw", "kind", "expected"),
    [
        ("42", "string", "42"),
        ("42", "integer", 42),
        ("42", "float", 42.0),
        ("true", "boolean", True),
        ("1.5", "float", 1.5),
    ],
)
def test_parse_value__explicit_type__is_kept(raw, kind, expected):
    value = values.parse_value(kind, raw, values.TRAIT)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        ("abc", "integer"),
        ("4.2", "integer"),
        ("x", "float"),
        ("1e999", "float"),
        ("yes", "boolean"),
        ("v", "decimal"),
        ("y" * 2001, "string"),
        ("y" * 2001, "infer"),
    ],
)
def test_parse_value__invalid__raises_validation_error(raw, kind):
    with pytest.raises(ValidationError):
        values.parse_value(kind, raw, values.TRAIT)


@pytest.mark.parametrize("key", ["", "   ", "k" * 201, "tab\there"])
def test_check_key__invalid__raises(key):
    with pytest.raises(ValidationError) as info:
        values.check_trait_key(key)
    assert info.value.field == "key"


def test_check_key__200_characters__is_fine():
    assert values.check_trait_key("k" * 200) == "k" * 200


def _user(email):
    return db.session.scalar(select(User).where(User.email == email))


def test_set_trait__entering_segment__reports_changed_flags(app):
    # Given alice (plan = free) and the QA user linked to her
    world = build_world()
    db.session.commit()
    # When plan becomes "pro"
    change = traits.set_trait(
        _user("qa@example.com"), world.alice, "plan", "pro", "infer", utcnow()
    )
    # Then the report names the flag the segment changes
    assert change.changed == ["max_upload_mb"]
    assert change.trait is not None and change.trait.value == "pro"


def test_set_trait__must_exist_for_unknown_key__raises_not_found(app):
    world = build_world()
    db.session.commit()
    with pytest.raises(NotFound):
        traits.set_trait(
            _user("qa@example.com"), world.alice, "nope", "1", "infer", utcnow(), must_exist=True
        )


def test_set_trait__viewer__is_forbidden(app):
    world = build_world()
    db.session.commit()
    with pytest.raises(Forbidden):
        traits.set_trait(_user("viewer@example.com"), world.alice, "plan", "pro", "infer", utcnow())


def test_delete_trait__leaving_segment__reports_changed_flags(app):
    world = build_world()
    db.session.commit()
    change = traits.delete_trait(_user("editor@example.com"), world.bob, "plan", utcnow())
    assert change.changed == ["max_upload_mb"] and change.trait is None
