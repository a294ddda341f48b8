"""The features service: value parsing, percentages, states, priorities."""

from __future__ import annotations

import math

import pytest
from sqlalchemy import select

from tests.factories import (
    features_make_segment_override,
    make_environment,
    make_feature,
    make_project,
    make_segment,
    make_user,
)
from webapp.extensions import db
from webapp.models import AuditEvent, FeatureState
from webapp.services import values
from webapp.services.errors import Conflict, NotFound, ValidationError
from webapp.services.features import catalog, feature_options, feature_overrides

# Database behaviour (states and priority updates): runs on SQLite and on PostgreSQL.
pytestmark = pytest.mark.databases("sqlite", "postgres")


@pytest.mark.parametrize(
    ("kind", "text", "expected"),
    [
        ("string", "", ""),
        ("string", " 7 ", " 7 "),
        ("integer", "007", 7),
        ("integer", "-0", 0),
        ("integer", str(2**53 - 1), 2**53 - 1),
        ("boolean", " True ", True),
        ("null", "", None),
    ],
)
def test_parse_value__valid__returns_typed_value(kind, text, expected):
    value = values.parse_value(kind, text, values.FLAG)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize(
    ("kind", "text", "field"),
    [
        ("integer", "1e3", "value"),
        ("integer", "١٢", "value"),  # Arabic-Indic digits: str.isdigit() would accept them
        ("integer", str(2**53), "value"),
        ("boolean", "1", "value"),
        ("float", "1.5", "value_type"),
        ("string", "x" * 20_001, "value"),
    ],
)
def test_parse_value__invalid__raises_validation_error_naming_field(kind, text, field):
    with pytest.raises(ValidationError) as caught:
        values.parse_value(kind, text, values.FLAG)
    assert caught.value.field == field


@pytest.mark.parametrize(
    "percentages", [[math.nan], [math.inf], [-0.1], [100.1], [50, 50.01], [40, 40, 21]]
)
def test_check_percentages__invalid__raises(percentages):
    with pytest.raises(ValidationError):
        feature_options.check_percentages(percentages)


@pytest.mark.parametrize("percentages", [[], [0], [100], [33.3, 33.3, 33.4], [0.1] * 1000])
def test_check_percentages__valid__passes(percentages):
    feature_options.check_percentages(percentages)


def test_editor_kind__bool_before_int():
    assert [values.editor_kind(v) for v in (True, 1, "1", None, 1.5, "[1]")] == [
        "boolean",
        "integer",
        "string",
        "null",
        "string",
        "json",
    ]


@pytest.fixture
def project(app):
    project = make_project()
    make_environment(project, "Development")
    db.session.commit()
    return project


def test_set_enabled__environment_without_state__creates_it(project):
    # Given a feature created before its second environment existed
    feature = make_feature(project, "late")
    staging = make_environment(project, "Staging")
    user = make_user("e@example.com", "editor", project)
    db.session.commit()
    # When it is enabled there
    row = catalog.set_enabled(staging, feature.id, True, user)
    # Then the missing state is created, enabled and audited
    assert row.state is not None and row.state.enabled is True
    assert db.session.scalar(select(AuditEvent.object_type)) == "feature_state"


def test_get_row__feature_of_other_project__not_found(project):
    other = make_project("Other")
    theirs = make_feature(other, "theirs")
    db.session.commit()
    with pytest.raises(NotFound):
        catalog.get_row(project.environments[0], theirs.id)


def test_create_feature__states_get_value_and_disabled(project):
    make_environment(project, "Production")
    db.session.commit()
    feature = catalog.create_feature(
        project, catalog.FeatureFields("beta", value_kind="boolean", value_text="true"), None
    )
    states = db.session.scalars(select(FeatureState).where(FeatureState.feature_id == feature.id))
    assert [(s.enabled, s.value) for s in states] == [(False, True), (False, True)]


def test_update_feature__multivariate_with_options_to_standard__refused(project):
    feature = make_feature(project, "mv", type="MULTIVARIATE")
    db.session.commit()
    feature_options.add_option(feature, "string", "a", 10, None)
    with pytest.raises(ValidationError) as caught:
        catalog.update_feature(feature, catalog.FeatureFields("mv", type="STANDARD"), None)
    assert caught.value.field == "type"


def test_reorder__stale_expected__conflict_and_nothing_changes(project):
    env = project.environments[0]
    feature = make_feature(project, "f")
    a = features_make_segment_override(make_segment(project, "A"), feature, env, 1, priority=3)
    b = features_make_segment_override(make_segment(project, "B"), feature, env, 2, priority=4)
    db.session.commit()
    with pytest.raises(Conflict):
        feature_overrides.reorder_segment_overrides(env, feature, [b.id, a.id], [b.id, a.id], None)
    db.session.rollback()
    assert (a.priority, b.priority) == (3, 4)


def test_reorder__same_order__normalises_priorities(project):
    env = project.environments[0]
    feature = make_feature(project, "f")
    a = features_make_segment_override(make_segment(project, "A"), feature, env, 1, priority=3)
    b = features_make_segment_override(make_segment(project, "B"), feature, env, 2, None)
    db.session.commit()
    result = feature_overrides.reorder_segment_overrides(
        env, feature, [a.id, b.id], [a.id, b.id], None
    )
    assert [(r.id, r.priority) for r in result.rows] == [(a.id, 0), (b.id, 1)]


def test_override_list__moved__swaps_neighbours():
    class Row:
        def __init__(self, id_):
            self.id = id_

    listing = feature_overrides.OverrideList([Row(1), Row(2), Row(3)], "1,2,3")  # type: ignore[list-item]
    assert listing.moved(0, 1) == "2,1,3" and listing.moved(2, -1) == "1,3,2"
