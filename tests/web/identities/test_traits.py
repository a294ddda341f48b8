"""Traits on the Identity page: add, inline edit, delete; re-evaluation; roles; 422s."""

from __future__ import annotations

import json

import pytest

from tests.web.identities.conftest import HX, count, events, traits_of
from webapp.models import AuditEvent

# Pages: runs once, on SQLite (see tests/conftest.py).
pytestmark = pytest.mark.databases("sqlite")


def _add(client, world, key, value, kind="infer", identity=None):
    return client.post(
        world.url(identity, "/traits"),
        data={"key": key, "value": value, "value_type": kind},
        headers=HX,
    )


@pytest.mark.parametrize(
    ("value", "kind", "expected"),
    [
        ("42", "infer", 42),
        ("4.5", "infer", 4.5),
        ("true", "infer", True),
        ("hello", "infer", "hello"),
        ("42", "string", "42"),
        ("7", "float", 7.0),
        ("False", "boolean", False),
    ],
)
def test_add_trait__type__is_inferred_or_explicit(client, auth, world, value, kind, expected):
    # Given the QA user on their own identity
    auth.login("qa@example.com")
    # When they add a trait
    response = _add(client, world, "score", value, kind)
    # Then it is stored with the type asked for (or inferred) and shown with a badge
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert html.lstrip().startswith('<section class="card" id="traits"') and "<html" not in html
    stored = traits_of(world.alice)["score"]
    assert stored == expected and type(stored) is type(expected)
    assert 'id="trait-score"' in html and "badge-type trait-type" in html
    event = events()[-1]
    assert (event.action, event.object_type, event.identity_id) == (
        "create",
        "trait",
        world.alice.id,
    )


def test_add_trait__entering_a_segment__reports_changed_flags(client, auth, world):
    # Given alice (plan = free) is outside "Pro users", which sets max_upload_mb = 250
    auth.login("qa@example.com")
    # When plan becomes pro
    response = _add(client, world, "plan", "pro")
    # Then the response tells the page to re-evaluate and names the changed flag
    trigger = json.loads(response.headers["HX-Trigger"])
    assert trigger["flags-changed"]["changed"] == ["max_upload_mb"]
    assert 'changed: <code class="changed-flag">max_upload_mb</code>' in response.get_data(
        as_text=True
    )
    # And the flags table and segments list now show the segment-driven value
    flags = client.get(world.url(suffix="/flags"), headers=HX).get_data(as_text=True)
    assert "segment “Pro users”" in flags
    segments = client.get(world.url(suffix="/segments"), headers=HX).get_data(as_text=True)
    assert "Pro users" in segments


@pytest.mark.parametrize(
    ("key", "value", "kind", "message"),
    [
        ("age", "abc", "integer", "not a whole number"),
        ("x" * 201, "v", "infer", "200"),
        ("note", "y" * 2001, "string", "2000"),
        ("f", "1e999", "float", "finite"),
        ("b", "maybe", "boolean", "“true” or “false”"),
        ("", "v", "infer", ""),
    ],
)
def test_add_trait__invalid__is_422_inline_and_changes_nothing(
    client, auth, world, key, value, kind, message
):
    auth.login("qa@example.com")
    before = traits_of(world.alice)
    response = _add(client, world, key, value, kind)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert html.lstrip().startswith('<section class="card" id="traits"')
    assert 'role="alert"' in html and message in html
    assert traits_of(world.alice) == before and count(AuditEvent) == 0


@pytest.mark.parametrize("email", ["viewer@example.com", "qa2@example.com"])
def test_add_trait__not_allowed__is_403(client, auth, world, email):
    auth.login(email)
    response = _add(client, world, "plan", "pro")
    assert response.status_code == 403
    assert traits_of(world.alice)["plan"] == "free" and count(AuditEvent) == 0


def test_add_trait__qa_on_unlinked_identity__is_403(client, auth, world):
    auth.login("qa@example.com")
    response = _add(client, world, "plan", "free", identity=world.bob)
    assert response.status_code == 403
    assert traits_of(world.bob)["plan"] == "pro"


def test_edit_trait__form_then_cancel__swap_the_row(client, auth, world):
    auth.login("qa@example.com")
    form = client.get(world.url(suffix="/traits/plan/edit"), headers=HX)
    html = form.get_data(as_text=True)
    assert form.status_code == 200
    assert html.lstrip().startswith('<tr id="trait-plan"') and "trait-edit-form" in html
    cancel = client.get(world.url(suffix="/traits/plan/row"), headers=HX)
    assert cancel.get_data(as_text=True).lstrip().startswith('<tr id="trait-plan"')
    assert "trait-edit-form" not in cancel.get_data(as_text=True)


@pytest.mark.parametrize("key", ["release/edit", "release/row", "a/edit/row"])
def test_edit_trait__key_ending_like_a_route__edits_and_cancels_that_trait(
    client, auth, world, key
):
    # Given traits "release" and one whose key ends like a route suffix
    auth.login("qa@example.com")
    for name in ("release", key):
        assert _add(client, world, name, f"value of {name}").status_code == 200
    # When its editor is opened, cancelled and saved
    form = client.get(world.url(suffix=f"/traits/{key}/edit"), headers=HX)
    cancel = client.get(world.url(suffix=f"/traits/{key}/row"), headers=HX)
    saved = client.put(world.url(suffix=f"/traits/{key}"), headers=HX, data=world.trait_data(
        key, value="changed", value_type="string"))  # fmt: skip
    # Then each request is about that trait, never "release"
    assert f"value of {key}" in form.get_data(as_text=True)
    assert "trait-edit-form" in form.get_data(as_text=True)
    assert f"value of {key}" in cancel.get_data(as_text=True)
    assert "trait-edit-form" not in cancel.get_data(as_text=True)
    assert saved.status_code == 200
    assert traits_of(world.alice)[key] == "changed"
    assert traits_of(world.alice)["release"] == "value of release"


def test_update_trait__valid__returns_row_trigger_and_impact(client, auth, world):
    auth.login("qa@example.com")
    response = client.put(
        world.url(suffix="/traits/plan"),
        data=world.trait_data("plan", value="pro", value_type="string"),
        headers=HX,
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert html.lstrip().startswith('<tr id="trait-plan"')
    assert 'id="trait-impact"' in html and 'hx-swap-oob="true"' in html
    assert json.loads(response.headers["HX-Trigger"])["flags-changed"]["changed"] == [
        "max_upload_mb"
    ]
    assert traits_of(world.alice)["plan"] == "pro"
    event = events()[-1]
    assert (event.action, event.before, event.after) == (
        "update",
        {"value": "free", "type": "string"},
        {"value": "pro", "type": "string"},
    )


def test_update_trait__invalid__is_422_with_form(client, auth, world):
    auth.login("qa@example.com")
    response = client.put(
        world.url(suffix="/traits/age"),
        data=world.trait_data("age", value="abc", value_type="integer"),
        headers=HX,
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert html.lstrip().startswith('<tr id="trait-age"') and "not a whole number" in html
    assert traits_of(world.alice)["age"] == 31


def test_update_trait__unknown_key__is_404(client, auth, world):
    auth.login("qa@example.com")
    response = client.put(
        world.url(suffix="/traits/nope"), data={"value": "1", "value_type": "infer"}, headers=HX
    )
    assert response.status_code == 404
    assert "nope" not in traits_of(world.alice)


def test_delete_trait__removes_it_and_reports(client, auth, world):
    # Given bob is a Pro user through his plan trait
    auth.login("editor@example.com")
    # When the editor deletes the trait
    response = client.delete(
        world.url(world.bob, "/traits/plan"),
        query_string=world.trait_data("plan", world.bob),
        headers=HX,
    )
    # Then it is gone, audited, and the page learns max_upload_mb changed
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    # (only an out-of-band note: the row itself is swapped for nothing)
    assert html.lstrip().startswith('<p id="trait-impact"') and 'hx-swap-oob="true"' in html
    assert "plan" not in traits_of(world.bob)
    assert json.loads(response.headers["HX-Trigger"])["flags-changed"]["changed"] == [
        "max_upload_mb"
    ]
    assert events()[-1].action == "delete"


def test_delete_trait__viewer__is_403(client, auth, world):
    auth.login("viewer@example.com")
    assert client.delete(world.url(suffix="/traits/plan"), headers=HX).status_code == 403
    assert "plan" in traits_of(world.alice)


def test_trait_change__sdk_sees_it(client, auth, world):
    auth.login("qa@example.com")
    _add(client, world, "plan", "pro")
    response = client.get(
        "/api/v1/identities/",
        query_string={"identifier": world.alice.identifier},
        headers={"X-Environment-Key": world.environment.client_key},
    )
    flags = {f["feature"]["name"]: f for f in response.get_json()["flags"]}
    assert flags["max_upload_mb"]["feature_state_value"] == 250


def test_pasted_long_trait_key__is_kept_and_refused_inline(client, auth, world):
    # Given a QA engineer pastes a 5,000-character key into the traits card
    auth.login("qa@example.com")
    before = traits_of(world.alice)
    key = "k" * 5000
    # When they submit it
    response = client.post(
        world.url(suffix="/traits"),
        data={"key": key, "value": "v", "value_type": "infer"},
        headers=HX,
    )
    # Then the card says the limit, keeps what they typed, and stores nothing
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'role="alert"' in html and "200" in html
    assert f'value="{key}"' in html and "maxlength" not in html
    assert "At most 200 characters." in html
    assert traits_of(world.alice) == before
