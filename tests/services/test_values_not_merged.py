"""Values that Python calls equal (1, True, 1.0, "1") are never merged or skipped.

In Python ``1 == True == 1.0``, so a comparison or a de-duplication that forgets the type
merges two options of an imported document, or skips the audit event (and the revision
bump SDKs wait for) when a value changes from 1 to true. Every place that compares or
de-duplicates values is driven here with generated mixes of such values: imports (option
de-duplication and the "unchanged" checks of a re-import), the "unchanged" checks before
an audit event on the Features page, and the Users page's bulk override.

These tests write rows, so they run on SQLite and PostgreSQL.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, func, select

from tests.factories import make_environment, make_feature, make_identity, make_project, make_user
from webapp.extensions import db
from webapp.models import (
    AuditEvent,
    Environment,
    Feature,
    FeatureState,
    IdentityOverride,
    Project,
)
from webapp.services import documents, values
from webapp.services.features import catalog, feature_options
from webapp.services.identities import manage

pytestmark = pytest.mark.databases("sqlite", "postgres")  # database behaviour: stored types

# Python-equal in groups: 1 == True == 1.0 (and "1" reads the same), 0 == False == 0.0.
MIX: list[Any] = [1, True, 1.0, "1", 0, False, 0.0, -0.0, "0", "true", "1.0", "True"]
DISTINCT_VALUES = st.lists(
    st.sampled_from(MIX), min_size=2, max_size=5, unique_by=values.identity_key
)
# What a form can type: (kind, text) pairs whose values are Python-equal across kinds.
FORMABLE = [
    ("integer", "1"),
    ("boolean", "true"),
    ("string", "1"),
    ("string", "true"),
    ("integer", "0"),
    ("boolean", "false"),
    ("string", "0"),
    ("string", "false"),
]
TWO_FORMABLE = st.lists(
    st.sampled_from(FORMABLE),
    min_size=2,
    max_size=2,
    unique_by=lambda p: values.identity_key(values.parse_value(p[0], p[1], values.FLAG)),
)
SETTINGS = settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _typed(value: Any) -> tuple[str, str]:
    return type(value).__name__, repr(value)


def _document(key: str, default: Any, options: list[Any]) -> dict[str, Any]:
    return {
        "api_key": key,
        "name": f"env {key}",
        "project": {"name": f"project {key}", "segments": []},
        "feature_states": [
            {
                "django_id": 1,
                "enabled": True,
                "feature": {"id": 1, "name": "colour", "type": "MULTIVARIATE"},
                "feature_state_value": default,
                "featurestate_uuid": str(uuid.uuid4()),
                "multivariate_feature_state_values": [
                    {
                        "multivariate_feature_option": {"value": value},
                        "mv_fs_value_uuid": str(uuid.uuid4()),
                        "percentage_allocation": 10,
                    }
                    for value in options
                ],
            }
        ],
    }


def _import(key: str, default: Any, options: list[Any]) -> Feature:
    """Import a one-feature document and return its feature."""
    result = documents.import_environment_document(_document(key, default, options))
    db.session.expire_all()
    project_id = result.environment.project_id
    return db.session.scalar(select(Feature).where(Feature.project_id == project_id))


@SETTINGS
@given(options=DISTINCT_VALUES)
def test_import__options_of_python_equal_values__are_all_kept(app, options):
    # Given a multivariate feature whose options have no id and values like 1 and true
    key = uuid.uuid4().hex[:22]
    # When the document is imported
    feature = _import(key, None, options)
    # Then each value is its own option, with its own type
    stored = sorted(_typed(o.value) for o in feature.options)
    assert stored == sorted(_typed(v) for v in options)


@SETTINGS
@given(pair=st.lists(st.sampled_from(MIX), min_size=2, max_size=2, unique_by=values.identity_key))
def test_reimport__value_changing_only_its_type__is_written(app, pair):
    # Given an imported document whose default value is 1 (say)
    first, second = pair
    key = uuid.uuid4().hex[:22]
    _import(key, first, [first])
    # When the same document is imported with true (Python-equal, another type)
    feature = _import(key, second, [second])
    # Then the state holds the new type (the re-import skipped nothing), and the option
    # without an id, matched by type and value, is a second option rather than the first
    state = db.session.scalar(select(FeatureState).where(FeatureState.feature_id == feature.id))
    assert _typed(state.value) == _typed(second)
    assert sorted(_typed(o.value) for o in feature.options) == sorted(
        [_typed(first), _typed(second)]
    )


def _world() -> tuple[Project, Environment, Any]:
    project = make_project(name=f"p{uuid.uuid4().hex[:8]}")
    environment = make_environment(project, name="Development")
    actor = make_user(email=f"{uuid.uuid4().hex[:8]}@example.com", role="editor", project=project)
    db.session.commit()
    return project, environment, actor


def _events(object_type: str) -> int:
    return db.session.scalar(
        select(func.count()).select_from(AuditEvent).where(AuditEvent.object_type == object_type)
    )


@SETTINGS
@given(pair=TWO_FORMABLE)
def test_feature_value__changing_only_the_type__is_audited(app, pair):
    # Given a feature whose default is 1 (say)
    (kind_a, text_a), (kind_b, text_b) = pair
    project, environment, actor = _world()
    feature = make_feature(project, name="flag")
    db.session.commit()
    catalog.set_value(environment, feature.id, kind_a, text_a, actor)
    before = _events("feature_state")
    # When it is set to true (Python-equal, another type)
    row = catalog.set_value(environment, feature.id, kind_b, text_b, actor)
    # Then the change is stored and audited, not skipped as "unchanged"
    expected = values.parse_value(kind_b, text_b, values.FLAG)
    assert _typed(row.state.value) == _typed(expected)
    assert _events("feature_state") == before + 1


@SETTINGS
@given(pair=TWO_FORMABLE)
def test_option_value__changing_only_the_type__is_audited(app, pair):
    (kind_a, text_a), (kind_b, text_b) = pair
    project, _environment, actor = _world()
    feature = make_feature(project, name="colour", type="MULTIVARIATE")
    db.session.commit()
    option = feature_options.add_option(feature, kind_a, text_a, 0, actor)
    before = db.session.scalar(select(func.count()).select_from(AuditEvent))
    changed = feature_options.update_option(feature, option.id, kind_b, text_b, actor)
    expected = values.parse_value(kind_b, text_b, values.FLAG)
    assert _typed(changed.value) == _typed(expected)
    assert db.session.scalar(select(func.count()).select_from(AuditEvent)) == before + 1


@SETTINGS
@given(pair=TWO_FORMABLE)
def test_bulk_override__python_equal_value__replaces_every_override(app, pair):
    # Given identities whose override of a feature holds 1 (say)
    (kind_a, text_a), (kind_b, text_b) = pair
    project, environment, actor = _world()
    feature = make_feature(project, name="flag")
    for name in ("ann", "ben"):
        make_identity(environment, identifier=name)
    db.session.commit()

    def bulk(kind: str, text: str) -> None:
        value = values.parse_value(kind, text, values.FLAG)
        request = manage.BulkRequest("override", "", feature_id=feature.id, value=value)
        manage.apply_bulk(actor, project.id, environment.id, request, expected=2)

    bulk(kind_a, text_a)
    # When a bulk override sets true (Python-equal, another type)
    bulk(kind_b, text_b)
    # Then every override holds the new value with its type
    db.session.expire_all()
    rows = db.session.scalars(
        select(IdentityOverride).where(IdentityOverride.feature_id == feature.id)
    ).all()
    expected = values.parse_value(kind_b, text_b, values.FLAG)
    assert [_typed(r.value) for r in rows] == [_typed(expected)] * 2
    db.session.execute(delete(IdentityOverride))
    db.session.commit()


def test_mix__holds_python_equal_values_of_every_type():
    # The generated mixes really contain values Python merges.
    assert len(set(MIX)) < len({values.identity_key(v) for v in MIX})
    assert {type(v) for v in MIX} == {int, bool, float, str}
