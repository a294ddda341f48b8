"""Creating, editing and deleting features: validation, audit, revisions, roles."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.web.features.conftest import HX, assert_partial, audit_events, count, revisions
from webapp.extensions import db
from webapp.models import Feature, FeatureState, IdentityOverride, SegmentOverride

# Pages: runs once, on SQLite (see tests/conftest.py).
pytestmark = pytest.mark.databases("sqlite")


def _feature(name: str) -> Feature | None:
    db.session.expire_all()
    return db.session.scalar(select(Feature).where(Feature.name == name))


def _form(**overrides):
    data = {
        "name": "new_checkout",
        "description": "Checkout v2",
        "type": "STANDARD",
        "value_kind": "null",
        "value": "",
    }
    data.update(overrides)
    return data


def test_new__editor__shows_form_page(client, editor):
    response = client.get(editor.url("/new"))
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" in body and 'id="feature-form"' in body


@pytest.mark.parametrize("role", ["viewer", "qa"])
def test_new__viewer_or_qa__is_403(client, auth, world, role):
    auth.login(f"{role}@example.com")
    assert client.get(world.url("/new")).status_code == 403


def test_create__valid__creates_state_in_every_environment_audits_and_bumps(client, editor):
    world = editor
    before = revisions(world.env, world.prod)
    # When the editor creates an integer-valued feature through htmx
    response = client.post(
        world.url(), data=_form(value_kind="integer", value="7", server_key_only="y"), headers=HX
    )
    # Then htmx is told to open the new feature
    feature = _feature("new_checkout")
    assert response.status_code == 200
    assert response.headers["HX-Redirect"].endswith(world.url(f"/{feature.id}"))
    # and every environment has a disabled state with the value as entered
    states = db.session.scalars(
        select(FeatureState).where(FeatureState.feature_id == feature.id)
    ).all()
    assert sorted(s.environment_id for s in states) == sorted([world.env.id, world.prod.id])
    assert all(s.enabled is False and s.value == 7 for s in states)
    assert feature.server_key_only is True and feature.description == "Checkout v2"
    # and the creation is audited and bumps every environment of the project
    (event,) = audit_events("feature")
    assert (event.action, event.object_label, event.project_id) == (
        "create",
        "new_checkout",
        world.project.id,
    )
    assert event.before is None and event.after["value"] == 7
    assert revisions(world.env, world.prod) == [before[0] + 1, before[1] + 1]


def test_create__plain_post__redirects_with_location(client, editor):
    response = client.post(editor.url(), data=_form())
    feature = _feature("new_checkout")
    assert response.status_code == 302
    assert response.headers["Location"].endswith(editor.url(f"/{feature.id}"))


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "This field is required"),
        ("has space", "no spaces"),
        ("ümlaut", "no spaces"),
        ("x" * 151, "150"),
        ("semi;colon", "no spaces"),
        ("dark_mode", "already has a feature named"),
        ("DARK_MODE", "already has a feature named"),
    ],
)
def test_create__bad_or_duplicate_name__is_422_inline_and_creates_nothing(
    client, editor, name, message
):
    world = editor
    before = (count(Feature), count(FeatureState), revisions(world.env))
    response = client.post(world.url(), data=_form(name=name), headers=HX)
    assert response.status_code == 422
    body = assert_partial(response, "feature-form")
    assert message in body and 'class="field-error"' in body
    assert (count(Feature), count(FeatureState), revisions(world.env)) == before
    assert audit_events() == []


def test_create__bad_name_without_htmx__is_422_full_page(client, editor):
    response = client.post(editor.url(), data=_form(name="bad name"))
    body = response.get_data(as_text=True)
    assert response.status_code == 422 and "<html" in body and 'id="feature-form"' in body


@pytest.mark.parametrize(
    ("kind", "value", "message"),
    [("integer", "abc", "is not a whole number"), ("boolean", "maybe", "“true” or “false”")],
)
def test_create__value_of_wrong_type__is_422_and_creates_nothing(
    client, editor, kind, value, message
):
    response = client.post(editor.url(), data=_form(value_kind=kind, value=value), headers=HX)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert _feature("new_checkout") is None


def test_create__unknown_type__is_422(client, editor):
    response = client.post(editor.url(), data=_form(type="WEIRD"), headers=HX)
    assert response.status_code == 422 and _feature("new_checkout") is None


@pytest.mark.parametrize("role", ["viewer", "qa"])
def test_create__viewer_or_qa__is_403_and_creates_nothing(client, auth, world, role):
    auth.login(f"{role}@example.com")
    response = client.post(world.url(), data=_form(), headers=HX)
    assert response.status_code == 403
    assert _feature("new_checkout") is None and audit_events() == []


def test_edit__editor__shows_filled_form(client, editor):
    body = client.get(editor.url(f"/{editor.limit.id}/edit")).get_data(as_text=True)
    assert 'value="max_upload"' in body and "Initial value" not in body


def test_update__rename__saves_audits_and_bumps_project(client, editor):
    world = editor
    before = revisions(world.env, world.prod)
    response = client.post(
        world.url(f"/{world.dark.id}/edit"),
        data=_form(name="dark-theme", description="", server_key_only=""),
        headers=HX,
    )
    assert response.status_code == 200 and "HX-Redirect" in response.headers
    assert _feature("dark-theme") is not None and _feature("dark_mode") is None
    (event,) = audit_events("feature")
    assert event.action == "update"
    assert (event.before["name"], event.after["name"]) == ("dark_mode", "dark-theme")
    assert revisions(world.env, world.prod) == [before[0] + 1, before[1] + 1]


def test_update__same_name_own_feature__is_allowed(client, editor):
    response = client.post(
        editor.url(f"/{editor.dark.id}/edit"),
        data=_form(name="dark_mode", description="now described"),
        headers=HX,
    )
    assert response.status_code == 200
    assert _feature("dark_mode").description == "now described"


def test_update__duplicate_name__is_422_and_changes_nothing(client, editor):
    response = client.post(
        editor.url(f"/{editor.dark.id}/edit"), data=_form(name="Max_Upload"), headers=HX
    )
    assert response.status_code == 422
    assert "already has a feature named" in assert_partial(response, "feature-form")
    assert _feature("dark_mode") is not None and audit_events() == []


@pytest.mark.parametrize("role", ["viewer", "qa"])
def test_update__viewer_or_qa__is_403(client, auth, world, role):
    auth.login(f"{role}@example.com")
    response = client.post(world.url(f"/{world.dark.id}/edit"), data=_form(name="renamed"))
    assert response.status_code == 403 and _feature("dark_mode") is not None


def test_detail__delete_button__confirm_names_what_goes_with_it(client, editor):
    body = client.get(editor.url(f"/{editor.limit.id}")).get_data(as_text=True)
    assert (
        'hx-confirm="Delete the feature “max_upload”? This also deletes its 2 environment' in body
    )
    assert "1 segment override and 1 identity override" in body


def test_delete__editor__removes_states_and_overrides_audits_and_redirects(client, editor):
    world = editor
    before = revisions(world.env, world.prod)
    response = client.delete(world.url(f"/{world.limit.id}"), headers=HX)
    assert response.status_code == 200
    assert response.headers["HX-Redirect"].endswith(world.url())
    assert _feature("max_upload") is None
    assert count(SegmentOverride) == 0 and count(IdentityOverride) == 0
    assert count(FeatureState) == 2  # dark_mode's two states remain
    (event,) = audit_events("feature")
    assert event.action == "delete" and event.after is None
    assert event.before["segment_overrides"] == 1 and event.before["identity_overrides"] == 1
    assert revisions(world.env, world.prod) == [before[0] + 1, before[1] + 1]


@pytest.mark.parametrize("role", ["viewer", "qa"])
def test_delete__viewer_or_qa__is_403_and_deletes_nothing(client, auth, world, role):
    auth.login(f"{role}@example.com")
    response = client.delete(world.url(f"/{world.limit.id}"), headers=HX)
    assert response.status_code == 403
    assert _feature("max_upload") is not None and count(SegmentOverride) == 1


def test_delete__unknown_feature__is_404(client, editor):
    assert client.delete(editor.url("/9999"), headers=HX).status_code == 404
