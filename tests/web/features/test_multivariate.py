"""Multivariate options and per-environment allocations on the allocation bar."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.factories import make_feature
from tests.web.features.conftest import HX, assert_partial, audit_events, revisions
from webapp.extensions import db
from webapp.models import FeatureState, MultivariateAllocation, MultivariateOption

# Pages: runs once, on SQLite (see tests/conftest.py).
pytestmark = pytest.mark.databases("sqlite")


@pytest.fixture
def app_config():
    # The SDK reads of the bucket test must see a change at once (no snapshot cache delay).
    return {"SDK_CACHE_TTL": 0}


@pytest.fixture
def colour(world):
    feature = make_feature(world.project, "button_colour", value="green", type="MULTIVARIATE")
    db.session.commit()
    return feature


def _allocations(feature, env) -> dict[str, float]:
    db.session.expire_all()
    state = db.session.scalar(
        select(FeatureState).where(
            FeatureState.feature_id == feature.id, FeatureState.environment_id == env.id
        )
    )
    return {a.option.value: a.percentage for a in state.allocations}


def _add(client, world, feature, value, percentage="0", kind="string"):
    return client.post(
        world.url(f"/{feature.id}/options"),
        data={"value_kind": kind, "value": value, "default_allocation": percentage},
        headers=HX,
    )


def test_add_option__valid__allocates_default_in_every_environment(client, editor, colour):
    world = editor
    before = revisions(world.env, world.prod)
    response = _add(client, world, colour, "blue", "30")
    body = assert_partial(response, "feature-options")
    assert response.status_code == 200 and 'id="allocation-bar"' in body
    assert 'width="30.0"' in body  # the server-rendered bar segment
    assert _allocations(colour, world.env) == {"blue": 30.0}
    assert _allocations(colour, world.prod) == {"blue": 30.0}
    (event,) = audit_events("multivariate_option")
    assert event.action == "create"
    assert event.after == {"value": "blue", "key": "blue", "default_allocation": 30.0}
    assert revisions(world.env, world.prod) == [before[0] + 1, before[1] + 1]


def test_add_option__integer_option__is_typed(client, editor, colour):
    _add(client, editor, colour, "12", "10", kind="integer")
    option = db.session.scalar(select(MultivariateOption))
    assert option.value == 12


@pytest.mark.parametrize(
    ("percentage", "message"),
    [
        ("-1", "cannot be negative"),
        ("nan", "not NaN"),
        ("abc", "Enter a number"),
        ("101", "cannot exceed 100"),
        ("inf", "not NaN"),
    ],
)
def test_add_option__bad_percentage__is_422_and_adds_nothing(
    client, editor, colour, percentage, message
):
    response = _add(client, editor, colour, "blue", percentage)
    assert response.status_code == 422
    assert message in assert_partial(response, "feature-options")
    assert db.session.scalar(select(MultivariateOption)) is None and audit_events() == []


def test_add_option__defaults_over_100__is_422(client, editor, colour):
    _add(client, editor, colour, "blue", "60")
    response = _add(client, editor, colour, "orange", "50")
    assert response.status_code == 422
    assert "add up to 110%" in response.get_data(as_text=True)
    assert _allocations(colour, editor.env) == {"blue": 60.0}


def test_add_option__wrong_type_value__is_422(client, editor, colour):
    response = _add(client, editor, colour, "abc", "10", kind="integer")
    assert response.status_code == 422 and "is not a whole number" in response.get_data(
        as_text=True
    )


def test_add_option__standard_feature__is_422(client, editor):
    response = _add(client, editor, editor.dark, "x", "10")
    assert response.status_code == 422 and "Only multivariate" in response.get_data(as_text=True)


def _options(client, world, colour):
    _add(client, world, colour, "blue", "20")
    _add(client, world, colour, "orange", "20")
    return list(db.session.scalars(select(MultivariateOption).order_by(MultivariateOption.id)))


def _put(client, world, feature, percentages, env=None):
    # The state version the page shows (adding options changes it).
    db.session.expire_all()
    state = db.session.scalar(
        select(FeatureState).where(
            FeatureState.feature_id == feature.id,
            FeatureState.environment_id == (env or world.env).id,
        )
    )
    data = {"version": state.version}
    for index, (option_id, value) in enumerate(percentages):
        data[f"allocations-{index}-option_id"] = str(option_id)
        data[f"allocations-{index}-percentage"] = value
    return client.put(world.url(f"/{feature.id}/allocations", env=env), data=data, headers=HX)


def test_allocations__valid__saves_for_this_environment_only(client, editor, colour):
    world = editor
    blue, orange = _options(client, world, colour)
    before = revisions(world.env, world.prod)
    response = _put(client, world, colour, [(blue.id, "50"), (orange.id, "49.5")])
    body = assert_partial(response, "feature-options")
    assert response.status_code == 200 and 'width="49.5"' in body
    assert _allocations(colour, world.env) == {"blue": 50.0, "orange": 49.5}
    assert _allocations(colour, world.prod) == {"blue": 20.0, "orange": 20.0}
    (event,) = audit_events("feature_state")
    assert event.environment_id == world.env.id
    assert event.before["allocations"] == {str(blue.id): 20.0, str(orange.id): 20.0}
    assert event.after["allocations"] == {str(blue.id): 50.0, str(orange.id): 49.5}
    assert revisions(world.env, world.prod) == [before[0] + 1, before[1]]


def test_allocations__decimal_sum_of_exactly_100__is_accepted(client, editor, colour):
    blue, orange = _options(client, editor, colour)
    response = _put(client, editor, colour, [(blue.id, "33.3"), (orange.id, "66.7")])
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (("60", "41"), "add up to 101%; at most 100% is allowed"),
        (("-5", "10"), "cannot be negative"),
        (("NaN", "10"), "not NaN"),
        (("abc", "10"), "Enter a number"),
        (("", "10"), "This field is required"),
    ],
)
def test_allocations__invalid__is_422_inline_and_changes_nothing(
    client, editor, colour, values, message
):
    world = editor
    blue, orange = _options(client, world, colour)
    before = revisions(world.env)
    response = _put(client, world, colour, [(blue.id, values[0]), (orange.id, values[1])])
    assert response.status_code == 422
    body = assert_partial(response, "feature-options")
    assert message in body
    # the user's input stays in the form next to the error
    assert f'value="{values[0]}"' in body or values[0] == ""
    assert _allocations(colour, world.env) == {"blue": 20.0, "orange": 20.0}
    assert revisions(world.env) == before
    assert len(audit_events("feature_state")) == 0


def test_allocations__option_of_another_feature__is_422(client, editor, colour):
    other = make_feature(editor.project, "other_mv", type="MULTIVARIATE")
    db.session.commit()
    _add(client, editor, other, "x", "10")
    foreign = db.session.scalar(select(MultivariateOption))
    response = _put(client, editor, colour, [(foreign.id, "10")])
    assert response.status_code == 422 and "no longer exists" in response.get_data(as_text=True)


@pytest.mark.parametrize("role", ["viewer", "qa"])
def test_allocations__viewer_or_qa__is_403(client, auth, world, colour, role):
    auth.login("editor@example.com")
    blue, orange = _options(client, world, colour)
    auth.logout()
    auth.login(f"{role}@example.com")
    response = _put(client, world, colour, [(blue.id, "90")])
    assert response.status_code == 403
    assert _allocations(colour, world.env)["blue"] == 20.0
    assert _add(client, world, colour, "red", "1").status_code == 403


def test_delete_option__removes_allocations_everywhere_and_audits(client, editor, colour):
    world = editor
    blue, orange = _options(client, world, colour)
    response = client.delete(world.url(f"/{colour.id}/options/{blue.id}"), headers=HX)
    assert_partial(response, "feature-options")
    assert _allocations(colour, world.env) == {"orange": 20.0}
    assert _allocations(colour, world.prod) == {"orange": 20.0}
    assert (
        db.session.scalar(
            select(MultivariateAllocation).where(MultivariateAllocation.option_id == blue.id)
        )
        is None
    )
    assert [e.action for e in audit_events("multivariate_option")] == ["create", "create", "delete"]


def test_detail__multivariate__shows_bar_and_inputs(client, editor, colour):
    blue, _ = _options(client, editor, colour)
    body = client.get(editor.url(f"/{colour.id}")).get_data(as_text=True)
    assert 'id="allocation-bar"' in body and f'id="option-{blue.id}"' in body
    assert 'name="allocations-0-percentage"' in body
    assert 'control (default value) <span id="control-percentage">60</span>%' in body


def test_edit_option__shows_the_editor_with_the_current_value(client, editor, colour):
    blue, _ = _options(client, editor, colour)
    response = client.get(editor.url(f"/{colour.id}/options/{blue.id}/edit"), headers=HX)
    body = assert_partial(response, "feature-options")
    assert 'id="option-edit-form"' in body and 'value="blue"' in body
    cancel = client.get(editor.url(f"/{colour.id}/options"), headers=HX)
    assert 'id="option-edit-form"' not in assert_partial(cancel, "feature-options")


def test_update_option__new_value__keeps_buckets_audits_and_bumps(client, editor, colour):
    # Given identities bucketed into blue (20 %) and orange (20 %)
    world = editor
    blue, orange = _options(client, world, colour)
    key = {"X-Environment-Key": world.env.client_key}
    people = [f"person-{n}" for n in range(60)]

    def variants() -> dict[str, str]:
        found = {}
        for person in people:
            flags = client.get(f"/api/v1/identities/?identifier={person}", headers=key).json
            found[person] = next(f for f in flags["flags"] if f["feature"]["name"] == colour.name)[
                "feature_state_value"
            ]
        return found

    before = variants()
    revision = revisions(world.env)
    # When blue is renamed to navy
    response = client.put(
        world.url(f"/{colour.id}/options/{blue.id}"),
        data={"value_kind": "string", "value": "navy"},
        headers=HX,
    )
    # Then the option keeps its id, everyone who had blue now gets navy, nobody else moves
    assert "navy" in assert_partial(response, "feature-options")
    db.session.expire_all()
    assert db.session.get(MultivariateOption, blue.id).value == "navy"
    after = variants()
    assert "blue" in before.values()
    assert after == {p: "navy" if v == "blue" else v for p, v in before.items()}
    assert [e.action for e in audit_events("multivariate_option")][-1] == "update"
    assert revisions(world.env)[0] > revision[0]


def test_update_option__invalid_value__is_422_inline_and_unchanged(client, editor, colour):
    blue, _ = _options(client, editor, colour)
    response = client.put(
        editor.url(f"/{colour.id}/options/{blue.id}"),
        data={"value_kind": "integer", "value": "twelve"},
        headers=HX,
    )
    body = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'id="option-edit-form"' in body and "not a whole number" in body
    db.session.expire_all()
    assert db.session.get(MultivariateOption, blue.id).value == "blue"


def test_update_option__option_of_another_feature__is_404(client, editor, colour):
    other = make_feature(editor.project, "other_mv", value="x", type="MULTIVARIATE")
    db.session.commit()
    _add(client, editor, other, "theirs", "10")
    theirs = db.session.scalars(
        select(MultivariateOption).where(MultivariateOption.feature_id == other.id)
    ).one()
    response = client.put(
        editor.url(f"/{colour.id}/options/{theirs.id}"),
        data={"value_kind": "string", "value": "hijacked"},
        headers=HX,
    )
    assert response.status_code == 404
    db.session.expire_all()
    assert db.session.get(MultivariateOption, theirs.id).value == "theirs"


@pytest.mark.parametrize("role", ["viewer", "qa"])
def test_update_option__viewer_or_qa__is_403(client, auth, world, colour, role):
    auth.login("editor@example.com")
    blue, _ = _options(client, world, colour)
    auth.logout()
    auth.login(f"{role}@example.com")
    response = client.put(
        world.url(f"/{colour.id}/options/{blue.id}"),
        data={"value_kind": "string", "value": "navy"},
        headers=HX,
    )
    assert response.status_code == 403
    db.session.expire_all()
    assert db.session.get(MultivariateOption, blue.id).value == "blue"
