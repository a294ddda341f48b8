"""Features list: full page vs partial, search, inline toggle and type-aware value editing."""

from __future__ import annotations

import pytest

from tests.web.features.conftest import HX, assert_partial, audit_events, revisions
from webapp.extensions import db
from webapp.models import FeatureState

# Pages: runs once, on SQLite (see tests/conftest.py).
pytestmark = pytest.mark.databases("sqlite")


@pytest.fixture
def app_config():
    # The SDK re-reads the key's revision on every request, so only a bump can refresh it.
    return {"SDK_CACHE_TTL": 0}


def _state(feature, env) -> FeatureState:
    db.session.expire_all()
    return (
        db.session.query(FeatureState).filter_by(feature_id=feature.id, environment_id=env.id).one()
    )


def test_index__full_page__lists_features_with_counts(client, auth, world):
    # Given a viewer
    auth.login("viewer@example.com")
    # When they open the features page
    response = client.get(world.url())
    # Then the page shows every feature with its override counts in this environment
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<html" in body and 'id="features-table"' in body
    assert f'id="feature-{world.dark.id}"' in body and f'id="feature-{world.limit.id}"' in body
    row = body.split(f'id="feature-{world.limit.id}"')[1].split("</tr>")[0]
    assert '<td class="segment-override-count">1</td>' in row
    assert '<td class="identity-override-count">1</td>' in row
    # and a viewer gets no toggle or edit control
    assert 'role="switch"' not in body and "edit-value" not in body


def test_index__other_environment__counts_are_per_environment(client, auth, world):
    # Given overrides only in Development
    auth.login("viewer@example.com")
    # When the Production list is opened
    body = client.get(world.url(env=world.prod)).get_data(as_text=True)
    # Then its counts are zero
    row = body.split(f'id="feature-{world.limit.id}"')[1].split("</tr>")[0]
    assert '<td class="segment-override-count">0</td>' in row


def test_index__htmx_search__returns_filtered_partial(client, auth, world):
    # Given an editor
    auth.login("editor@example.com")
    # When they type "dark" in the live search
    response = client.get(world.url("?q=DARK"), headers=HX)
    # Then only the table partial comes back, filtered case-insensitively
    body = assert_partial(response, "features-list")
    assert f'id="feature-{world.dark.id}"' in body
    assert f'id="feature-{world.limit.id}"' not in body


def test_index__search_with_like_wildcards__is_literal(client, auth, world):
    auth.login("viewer@example.com")
    body = client.get(world.url("?q=%25"), headers=HX).get_data(as_text=True)
    assert "No feature matches" in body


def test_index__outsider__is_404(client, auth, world):
    auth.login("outsider@example.com")
    assert client.get(world.url()).status_code == 404


def test_toggle__editor__enables_audits_and_bumps_environment_only(client, editor):
    world = editor
    before = revisions(world.env, world.prod)
    # When the editor switches dark_mode on in Development
    response = client.post(
        world.url(f"/{world.dark.id}/enabled"), data={"enabled": "true", "version": 1}, headers=HX
    )
    # Then the row comes back switched on
    body = assert_partial(response, f"feature-{world.dark.id}")
    assert 'aria-checked="true"' in body
    assert _state(world.dark, world.env).enabled is True
    assert _state(world.dark, world.prod).enabled is False
    # and the change is audited with before/after and bumps only this environment
    (event,) = audit_events("feature_state")
    assert (event.action, event.environment_id, event.actor_label) == (
        "update",
        world.env.id,
        "editor@example.com",
    )
    assert event.before["enabled"] is False and event.after["enabled"] is True
    assert revisions(world.env, world.prod) == [before[0] + 1, before[1]]


def test_toggle__same_state_twice__is_idempotent_and_audited_once(client, editor):
    # A double click sends the page's version twice: the second changes nothing and is no
    # conflict either.
    world = editor
    client.post(
        world.url(f"/{world.dark.id}/enabled"), data={"enabled": "true", "version": 1}, headers=HX
    )
    client.post(
        world.url(f"/{world.dark.id}/enabled"), data={"enabled": "true", "version": 1}, headers=HX
    )
    assert _state(world.dark, world.env).enabled is True
    assert len(audit_events("feature_state")) == 1


def test_toggle__off__disables(client, editor):
    world = editor
    client.post(
        world.url(f"/{world.limit.id}/enabled"), data={"enabled": "false", "version": 1}, headers=HX
    )
    assert _state(world.limit, world.env).enabled is False


def test_toggle__plain_post__redirects_to_list(client, editor):
    world = editor
    response = client.post(
        world.url(f"/{world.dark.id}/enabled"), data={"enabled": "true", "version": 1}
    )
    assert response.status_code == 302
    assert response.headers["Location"].endswith(world.url())


def test_toggle__sdk_api__reflects_new_state(client, editor):
    world = editor
    headers = {"X-Environment-Key": world.env.client_key}
    # Given the SDK has already served (and cached) the flags
    flags = {f["feature"]["name"]: f for f in client.get("/api/v1/flags/", headers=headers).json}
    assert flags["dark_mode"]["enabled"] is False
    # When the editor toggles the flag on the dashboard
    client.post(
        world.url(f"/{world.dark.id}/enabled"), data={"enabled": "true", "version": 1}, headers=HX
    )
    # Then the SDK API serves the new state
    flags = {f["feature"]["name"]: f for f in client.get("/api/v1/flags/", headers=headers).json}
    assert flags["dark_mode"]["enabled"] is True


@pytest.mark.parametrize("role", ["viewer", "qa"])
def test_toggle__viewer_or_qa__is_403_and_changes_nothing(client, auth, world, role):
    auth.login(f"{role}@example.com")
    before = revisions(world.env)
    response = client.post(
        world.url(f"/{world.dark.id}/enabled"), data={"enabled": "true", "version": 1}, headers=HX
    )
    assert response.status_code == 403
    assert _state(world.dark, world.env).enabled is False
    assert audit_events() == [] and revisions(world.env) == before


def test_toggle__feature_of_another_project__is_404(client, auth, world):
    from tests.factories import make_feature
    from webapp.models import Project

    other = db.session.query(Project).filter_by(name="Other").one()
    theirs = make_feature(other, "theirs")
    db.session.commit()
    auth.login("editor@example.com")
    response = client.post(
        world.url(f"/{theirs.id}/enabled"), data={"enabled": "true", "version": 1}, headers=HX
    )
    assert response.status_code == 404


def test_edit_value__htmx__returns_type_aware_editor(client, editor):
    world = editor
    response = client.get(world.url(f"/{world.limit.id}/value/edit"), headers=HX)
    body = assert_partial(response, f"feature-{world.limit.id}")
    assert 'id="feature-value-form"' in body
    assert '<option selected value="integer">' in body and 'value="25"' in body


def test_row__cancel__returns_display_row(client, editor):
    world = editor
    body = assert_partial(
        client.get(world.url(f"/{world.limit.id}/row"), headers=HX), f"feature-{world.limit.id}"
    )
    assert "feature-value-form" not in body and ">25<" in body


@pytest.mark.parametrize(
    ("kind", "text", "expected"),
    [
        ("string", "hello <b>", "hello <b>"),
        ("string", "42", "42"),
        ("integer", " 42 ", 42),
        ("integer", "-7", -7),
        ("boolean", "TRUE", True),
        ("boolean", "false", False),
        ("null", "", None),
    ],
)
def test_update_value__valid__saves_typed_value_and_audits(client, editor, kind, text, expected):
    world = editor
    response = client.put(
        world.url(f"/{world.dark.id}/value"),
        data={"value_kind": kind, "value": text, "version": 1},
        headers=HX,
    )
    assert response.status_code == 200
    assert_partial(response, f"feature-{world.dark.id}")
    value = _state(world.dark, world.env).value
    assert value == expected and type(value) is type(expected)
    if expected is not None:
        (event,) = audit_events("feature_state")
        assert event.after["value"] == expected


def test_update_value__string_value__is_escaped_in_row(client, editor):
    world = editor
    body = client.put(
        world.url(f"/{world.dark.id}/value"),
        data={"value_kind": "string", "value": "<script>x</script>", "version": 1},
        headers=HX,
    ).get_data(as_text=True)
    assert "<script>x" not in body and "&lt;script&gt;" in body


@pytest.mark.parametrize(
    ("kind", "text", "message"),
    [
        ("integer", "abc", "is not a whole number"),
        ("integer", "4.5", "is not a whole number"),
        ("integer", "", "is not a whole number"),
        ("integer", "99999999999999999999", "Integers must lie within"),
        ("boolean", "yes", "“true” or “false”"),
        ("float", "1.5", "Not a valid choice"),
    ],
)
def test_update_value__invalid__is_422_inline_and_changes_nothing(
    client, editor, kind, text, message
):
    world = editor
    before = revisions(world.env)
    response = client.put(
        world.url(f"/{world.limit.id}/value"),
        data={"value_kind": kind, "value": text, "version": 1},
        headers=HX,
    )
    assert response.status_code == 422
    body = assert_partial(response, f"feature-{world.limit.id}")
    assert 'id="feature-value-form"' in body and message in body
    assert _state(world.limit, world.env).value == 25
    assert audit_events() == [] and revisions(world.env) == before


@pytest.mark.parametrize("role", ["viewer", "qa"])
def test_update_value__viewer_or_qa__is_403(client, auth, world, role):
    auth.login(f"{role}@example.com")
    response = client.put(
        world.url(f"/{world.limit.id}/value"),
        data={"value_kind": "integer", "value": "1", "version": 1},
        headers=HX,
    )
    assert response.status_code == 403
    assert _state(world.limit, world.env).value == 25
    assert client.get(world.url(f"/{world.limit.id}/value/edit"), headers=HX).status_code == 403
