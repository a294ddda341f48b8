"""Model constraints and typed values, on both databases."""

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from tests.factories import make_environment, make_feature, make_identity, make_project
from webapp.extensions import db
from webapp.models import (
    Feature,
    Identity,
    MultivariateAllocation,
    MultivariateOption,
    Trait,
    numeric_form,
)

# Database behaviour (constraints and typed storage): runs on SQLite and on PostgreSQL.
pytestmark = pytest.mark.databases("sqlite", "postgres")


def test_identity__same_identifier_in_one_environment__is_rejected(app):
    # Given an identity "alice" in Development
    environment = make_environment()
    make_identity(environment, "alice")
    # When a second "alice" is added to the same environment
    db.session.add(Identity(environment_id=environment.id, identifier="alice"))
    # Then the database refuses it
    with pytest.raises(IntegrityError):
        db.session.flush()


def test_identity__same_identifier_in_two_environments__is_two_identities(app):
    project = make_project()
    development = make_environment(project, "Development")
    production = make_environment(project, "Production")
    first = make_identity(development, "alice")
    second = make_identity(production, "alice")
    db.session.commit()
    assert first.id != second.id
    assert db.session.scalar(select(Identity.id).where(Identity.identifier == "alice").limit(2))


def test_identity__2000_multibyte_characters__fit_the_unique_index(app):
    # PostgreSQL btree entries hold ~2.7 kB; 2,000 emoji are 8 kB, hence the hashed index.
    environment = make_environment()
    identifier = "😀" * 2000
    make_identity(environment, identifier)
    db.session.commit()
    stored = db.session.scalar(select(Identity).where(Identity.environment_id == environment.id))
    assert stored.identifier == identifier
    assert len(stored.identifier_prefix) == 100


@pytest.mark.parametrize(
    ("value", "expected_type"),
    [
        ("42", "string"),
        ("hello wörld", "string"),
        ("", "string"),
        (42, "integer"),
        (-7, "integer"),
        (2**62, "integer"),
        (3.0, "float"),
        (0.1, "float"),
        (-1.5e-300, "float"),
        (True, "boolean"),
        (False, "boolean"),
    ],
)
def test_trait__typed_value__round_trips_exactly(app, value, expected_type):
    # Given a trait stored with a typed value
    environment = make_environment()
    make_identity(environment, "alice", {"k": value})
    db.session.commit()
    db.session.expunge_all()
    # When it is read back in a fresh session
    trait = db.session.scalar(select(Trait).where(Trait.key == "k"))
    # Then the type is kept as sent ("42" stays a string, 3.0 stays a float)
    assert trait.value_type == expected_type
    assert trait.value == value
    assert type(trait.value) is type(value)


def test_trait__one_key_per_identity(app):
    environment = make_environment()
    identity = make_identity(environment, "alice", {"plan": "free"})
    duplicate = Trait(identity_id=identity.id, environment_id=environment.id, key="plan")
    duplicate.value = "pro"
    db.session.add(duplicate)
    with pytest.raises(IntegrityError):
        db.session.flush()


def test_trait__none_value__is_refused():
    trait = Trait(key="plan")
    with pytest.raises(ValueError, match="delete the trait"):
        trait.value = None


@pytest.mark.parametrize(
    ("value", "number"),
    [
        (42, 42.0),
        ("007", 7.0),
        ("1.50", 1.5),
        ("-3", -3.0),
        (2.5, 2.5),
        ("1e5", None),
        ("abc", None),
        (True, None),
        ("1.", None),
        (10**400, None),
        ("9" * 400, None),
    ],
)
def test_numeric_form__follows_the_evaluation_normalisation(value, number):
    assert numeric_form(value) == number


def test_feature__name_unique_per_project(app):
    project = make_project()
    make_environment(project)
    make_feature(project, "dark_mode")
    db.session.add(Feature(project=project, name="dark_mode"))
    with pytest.raises(IntegrityError):
        db.session.flush()


def test_feature__same_name_in_another_project__is_allowed(app):
    make_feature(make_project("One"), "dark_mode")
    make_feature(make_project("Two"), "dark_mode")
    db.session.commit()
    assert len(db.session.scalars(select(Feature).where(Feature.name == "dark_mode")).all()) == 2


def test_allocation__needs_exactly_one_owner(app):
    project = make_project()
    make_environment(project)
    feature = make_feature(project, "colour", type="MULTIVARIATE")
    option = MultivariateOption(feature=feature)
    option.value = "blue"
    db.session.add(option)
    db.session.flush()
    db.session.add(MultivariateAllocation(option_id=option.id, percentage=10))
    with pytest.raises(IntegrityError):
        db.session.flush()


def test_allocation__percentage_outside_0_100__is_rejected(app):
    project = make_project()
    make_environment(project)
    feature = make_feature(project, "colour", type="MULTIVARIATE")
    option = MultivariateOption(feature=feature)
    option.value = "blue"
    db.session.add(option)
    db.session.flush()
    state = feature.states[0]
    db.session.add(
        MultivariateAllocation(option_id=option.id, feature_state_id=state.id, percentage=120)
    )
    with pytest.raises(IntegrityError):
        db.session.flush()


def test_feature_state__value__round_trips_typed(app):
    project = make_project()
    make_environment(project)
    for name, value in [("a", "text"), ("b", 12), ("c", True), ("d", None)]:
        make_feature(project, name, value=value)
    db.session.commit()
    db.session.expunge_all()
    states = {f.name: f.states[0].value for f in db.session.scalars(select(Feature))}
    assert states == {"a": "text", "b": 12, "c": True, "d": None}
