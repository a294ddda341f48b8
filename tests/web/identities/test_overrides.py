"""Override actions on the Identity page: toggle, edit, option, remove, undo, expiry, roles."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest

from tests.factories import identities_make_override
from tests.web.identities.conftest import HX, count, events, overrides_of, revision
from webapp.clock import utcnow
from webapp.extensions import db
from webapp.models import AuditEvent, IdentityOverride, MultivariateOption

# Pages: runs once, on SQLite (see tests/conftest.py).
pytestmark = pytest.mark.databases("sqlite")


def _sdk_flag(client, world, identity, name):
    response = client.get(
        "/api/v1/identities/",
        query_string={"identifier": identity.identifier},
        headers={"X-Environment-Key": world.environment.client_key},
    )
    assert response.status_code == 200
    return next(f for f in response.get_json()["flags"] if f["feature"]["name"] == name)


def test_toggle__qa_on_own_identity__creates_override_audits_and_bumps(client, auth, world):
    # Given the QA user on their linked identity, dark_mode off by default
    auth.login("qa@example.com")
    before = revision(world.environment)
    # When they toggle dark_mode
    response = client.post(
        world.flag_url("dark_mode", "/toggle"), data=world.page_data("dark_mode"), headers=HX
    )
    # Then the row comes back on, from an identity override, with an undo offer
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert html.lstrip().startswith('<tr id="flag-dark_mode"') and "<html" not in html
    assert re.search(r'class="effective-enabled"[^>]*><span class="state-badge[^"]*">on<', html)
    assert "identity override" in html
    trigger = json.loads(response.headers["HX-Trigger"])["override-changed"]
    event = events()[-1]
    assert trigger["undoUrl"].endswith(f"/undo/{event.id}")
    # And the override, the audit event and the revision bump were all saved
    [override] = overrides_of(world.alice)
    assert (override.enabled, override.feature_id) == (True, world.features["dark_mode"].id)
    assert (event.action, event.object_type, event.identity_id) == (
        "toggle",
        "identity_override",
        world.alice.id,
    )
    assert event.before is None and event.after["enabled"] is True
    assert revision(world.environment) == before + 1
    # And the SDK serves the new state
    assert _sdk_flag(client, world, world.alice, "dark_mode")["enabled"] is True


def test_toggle__twice__flips_the_existing_override(client, auth, world):
    auth.login("qa@example.com")
    client.post(
        world.flag_url("dark_mode", "/toggle"), data=world.page_data("dark_mode"), headers=HX
    )
    client.post(
        world.flag_url("dark_mode", "/toggle"), data=world.page_data("dark_mode"), headers=HX
    )
    [override] = overrides_of(world.alice)
    assert override.enabled is False
    assert _sdk_flag(client, world, world.alice, "dark_mode")["enabled"] is False


def test_toggle__plain_browser_post__redirects_to_the_page(client, auth, world):
    auth.login("qa@example.com")
    response = client.post(
        world.flag_url("dark_mode", "/toggle"), data=world.page_data("dark_mode")
    )
    assert response.status_code == 302
    assert response.headers["Location"].endswith(world.url())


@pytest.mark.parametrize("email", ["viewer@example.com", "qa2@example.com", "qa@example.com"])
def test_toggle__not_allowed__is_403_and_changes_nothing(client, auth, world, email):
    # Given a viewer, a QA user not linked to bob, and alice's own QA user on bob
    auth.login(email)
    before = revision(world.environment)
    # When they try to toggle bob's flag (editing the ids in the request)
    response = client.post(
        world.flag_url("dark_mode", "/toggle", world.bob),
        data=world.page_data("dark_mode", world.bob),
        headers=HX,
    )
    # Then it is refused and nothing changes
    assert response.status_code == 403
    assert count(IdentityOverride) == 0 and count(AuditEvent) == 0
    assert revision(world.environment) == before


def test_toggle__outsider__is_404(client, auth, world):
    auth.login("outsider@example.com")
    response = client.post(
        world.flag_url("dark_mode", "/toggle"), data=world.page_data("dark_mode"), headers=HX
    )
    assert response.status_code == 404
    assert count(IdentityOverride) == 0


@pytest.mark.parametrize("email", ["editor@example.com", "admin@example.com"])
def test_toggle__editor_or_admin__may_change_any_identity(client, auth, world, email):
    auth.login(email)
    response = client.post(
        world.flag_url("dark_mode", "/toggle", world.bob),
        data=world.page_data("dark_mode", world.bob),
        headers=HX,
    )
    assert response.status_code == 200
    assert len(overrides_of(world.bob)) == 1


@pytest.mark.parametrize(
    ("choice", "delta"),
    [("1h", timedelta(hours=1)), ("1d", timedelta(days=1)), ("1w", timedelta(weeks=1))],
)
def test_toggle__with_expiry__stores_it(client, auth, world, choice, delta):
    auth.login("qa@example.com")
    data = world.page_data("dark_mode", expires=choice)
    client.post(world.flag_url("dark_mode", "/toggle"), data=data, headers=HX)
    [override] = overrides_of(world.alice)
    assert abs((override.expires_at - (utcnow() + delta)).total_seconds()) < 60


def test_toggle__custom_expiry_in_the_past__is_422_and_changes_nothing(client, auth, world):
    auth.login("qa@example.com")
    response = client.post(
        world.flag_url("dark_mode", "/toggle"),
        data=world.page_data("dark_mode", expires="custom", expires_at="2001-01-01T10:00"),
        headers=HX,
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert html.lstrip().startswith('<tr id="flag-dark_mode"') and "must be in the future" in html
    assert count(IdentityOverride) == 0 and count(AuditEvent) == 0


def test_toggle__custom_expiry_in_the_future__is_stored(client, auth, world):
    auth.login("qa@example.com")
    moment = (utcnow() + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M")
    client.post(
        world.flag_url("dark_mode", "/toggle"),
        data=world.page_data("dark_mode", expires="custom", expires_at=moment),
        headers=HX,
    )
    [override] = overrides_of(world.alice)
    assert override.expires_at.strftime("%Y-%m-%dT%H:%M") == moment


def test_expired_override__no_longer_applies_to_the_sdk(client, auth, world):
    # Given an override that expired a minute ago
    identities_make_override(
        world.alice,
        world.features["dark_mode"],
        True,
        None,
        expires_at=utcnow() - timedelta(minutes=1),
    )
    db.session.commit()
    # Then the SDK serves the default again
    assert _sdk_flag(client, world, world.alice, "dark_mode")["enabled"] is False


def test_edit_override__form__replaces_the_row(client, auth, world):
    auth.login("qa@example.com")
    response = client.get(world.flag_url("welcome", "/edit"), headers=HX)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert html.lstrip().startswith('<tr id="flag-welcome"') and "override-form" in html
    assert "hello" in html


def test_edit_override__viewer__is_403(client, auth, world):
    auth.login("viewer@example.com")
    assert client.get(world.flag_url("welcome", "/edit"), headers=HX).status_code == 403


@pytest.mark.parametrize(
    ("value", "kind", "expected"),
    [
        ("hi there", "string", "hi there"),
        ("42", "integer", 42),
        ("true", "boolean", True),
        ('{"a": [1, 2]}', "json", '{"a": [1, 2]}'),
    ],
)
def test_update_override__typed_value__is_stored_and_served(
    client, auth, world, value, kind, expected
):
    # Given the QA user on their identity
    auth.login("qa@example.com")
    # When they save a typed value for welcome
    response = client.put(
        world.flag_url("welcome", "/override"),
        data=world.page_data("welcome", value=value, value_type=kind),
        headers=HX,
    )
    # Then the override holds exactly that typed value, and the SDK serves it
    assert response.status_code == 200
    [override] = overrides_of(world.alice)
    assert override.value == expected and type(override.value) is type(expected)
    assert override.enabled is False  # the inherited enabled state is kept
    served = _sdk_flag(client, world, world.alice, "welcome")["feature_state_value"]
    assert served == expected


@pytest.mark.parametrize(
    ("value", "kind", "message"),
    [
        ("abc", "integer", "not a whole number"),
        ("maybe", "boolean", "“true” or “false”"),
        ("{oops", "json", "Not valid JSON"),
    ],
)
def test_update_override__invalid_value__is_422_inline(client, auth, world, value, kind, message):
    auth.login("qa@example.com")
    response = client.put(
        world.flag_url("welcome", "/override"),
        data=world.page_data("welcome", value=value, value_type=kind),
        headers=HX,
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert html.lstrip().startswith('<tr id="flag-welcome"') and message in html
    assert "override-form" in html  # the editor stays open with the input
    assert count(IdentityOverride) == 0 and count(AuditEvent) == 0


def test_choose_option__multivariate__fixes_option_and_copies_value(client, auth, world):
    auth.login("qa@example.com")
    orange = db.session.query(MultivariateOption).filter_by(value_text="orange").one()
    response = client.post(
        world.flag_url("button_colour", "/option"),
        data=world.page_data("button_colour", option_id=orange.id),
        headers=HX,
    )
    assert response.status_code == 200
    [override] = overrides_of(world.alice)
    assert (override.option_id, override.value) == (orange.id, "orange")
    assert _sdk_flag(client, world, world.alice, "button_colour")["feature_state_value"] == (
        "orange"
    )


def test_choose_option__option_of_another_feature__is_422(client, auth, world):
    auth.login("qa@example.com")
    orange = db.session.query(MultivariateOption).filter_by(value_text="orange").one()
    response = client.post(
        world.flag_url("welcome", "/option"),
        data=world.page_data("welcome", option_id=orange.id),
        headers=HX,
    )
    assert response.status_code == 422
    assert "this feature" in response.get_data(as_text=True)
    assert count(IdentityOverride) == 0


def test_remove_override__back_to_inherited(client, auth, world):
    # Given bob (a Pro user) has an override of max_upload_mb
    identities_make_override(world.bob, world.features["max_upload_mb"], False, 1)
    db.session.commit()
    auth.login("editor@example.com")
    before = revision(world.environment)
    # When the editor removes it
    response = client.delete(
        world.flag_url("max_upload_mb", "/override", world.bob),
        query_string=world.page_data("max_upload_mb", world.bob),
        headers=HX,
    )
    # Then the row shows the segment value again, audited, revision bumped
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "segment “Pro users”" in html and "inherited" in html
    assert overrides_of(world.bob) == []
    assert events()[-1].action == "remove" and events()[-1].after is None
    assert revision(world.environment) == before + 1


def test_remove_override__none_there__is_404(client, auth, world):
    auth.login("editor@example.com")
    response = client.delete(
        world.flag_url("dark_mode", "/override"), query_string={"version": 0}, headers=HX
    )
    assert response.status_code == 404


def test_undo__after_toggle__restores_previous_state_and_audits(client, auth, world):
    # Given alice had an override (on, "v1") and the QA user toggled it off
    identities_make_override(world.alice, world.features["welcome"], True, "v1")
    db.session.commit()
    auth.login("qa@example.com")
    response = client.post(
        world.flag_url("welcome", "/toggle"), data=world.page_data("welcome"), headers=HX
    )
    undo_url = json.loads(response.headers["HX-Trigger"])["override-changed"]["undoUrl"]
    assert overrides_of(world.alice)[0].enabled is False
    before = revision(world.environment)
    # When they undo
    response = client.post(undo_url, headers=HX)
    # Then the override is on again, the table is told to refresh, and undo is audited
    assert response.status_code == 200
    assert "flags-changed" in json.loads(response.headers["HX-Trigger"])
    [override] = overrides_of(world.alice)
    assert (override.enabled, override.value) == (True, "v1")
    assert events()[-1].action == "undo"
    assert revision(world.environment) == before + 1
    assert _sdk_flag(client, world, world.alice, "welcome")["enabled"] is True


def test_undo__of_a_created_override__deletes_it(client, auth, world):
    auth.login("qa@example.com")
    response = client.post(
        world.flag_url("dark_mode", "/toggle"), data=world.page_data("dark_mode"), headers=HX
    )
    undo_url = json.loads(response.headers["HX-Trigger"])["override-changed"]["undoUrl"]
    client.post(undo_url, headers=HX)
    assert overrides_of(world.alice) == []


def test_undo__after_a_later_change__is_409_and_changes_nothing(client, auth, world):
    auth.login("qa@example.com")
    response = client.post(
        world.flag_url("dark_mode", "/toggle"), data=world.page_data("dark_mode"), headers=HX
    )
    undo_url = json.loads(response.headers["HX-Trigger"])["override-changed"]["undoUrl"]
    client.post(
        world.flag_url("dark_mode", "/toggle"), data=world.page_data("dark_mode"), headers=HX
    )
    response = client.post(undo_url, headers=HX)
    assert response.status_code == 409
    assert overrides_of(world.alice)[0].enabled is False


def test_undo__by_someone_not_allowed__is_403(client, auth, world):
    auth.login("qa@example.com")
    response = client.post(
        world.flag_url("dark_mode", "/toggle"), data=world.page_data("dark_mode"), headers=HX
    )
    undo_url = json.loads(response.headers["HX-Trigger"])["override-changed"]["undoUrl"]
    client.post("/logout")
    auth.login("qa2@example.com")
    assert client.post(undo_url, headers=HX).status_code == 403
    assert len(overrides_of(world.alice)) == 1


def test_undo__event_of_another_identity__is_404(client, auth, world):
    auth.login("editor@example.com")
    client.post(
        world.flag_url("dark_mode", "/toggle", world.bob),
        data=world.page_data("dark_mode", world.bob),
        headers=HX,
    )
    event = events()[-1]
    response = client.post(world.url(world.alice, f"/undo/{event.id}"), headers=HX)
    assert response.status_code == 404
    assert len(overrides_of(world.bob)) == 1
