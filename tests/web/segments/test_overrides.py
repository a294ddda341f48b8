"""Overrides tab: create, update, delete segment overrides (audited, revision bumped)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from tests.web.segments.conftest import HX
from webapp.extensions import db
from webapp.models import AuditEvent, Environment, SegmentOverride

# Pages: runs once, on SQLite (see tests/conftest.py).
pytestmark = pytest.mark.databases("sqlite")


def _url(world, suffix=""):
    return f"/environments/{world.env.id}/segments/{world.segment.id}/overrides{suffix}"


def _create(client, world, **extra):
    data = {"feature_id": world.feature.id, "enabled": "y", "value_type": "string",
            "value": "on", "priority": "3", **extra}  # fmt: skip
    return client.post(_url(world), data=data, headers=HX)


def test_overrides_tab__viewer__read_only_table(client, auth, world):
    auth.login("viewer@example.com")
    html = client.get(
        f"/environments/{world.env.id}/segments/{world.segment.id}?tab=overrides"
    ).get_data(as_text=True)
    assert 'id="segment-overrides"' in html and 'id="new-override"' not in html


def test_create_override__editor__saves_audits_bumps_and_returns_partial(client, auth, world):
    auth.login("editor@example.com")
    revision = world.env.revision
    response = _create(client, world)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert html.lstrip().startswith('<div id="segment-overrides">') and "<html" not in html
    assert 'id="override-banner"' in html
    row = db.session.scalars(select(SegmentOverride)).one()
    assert (row.enabled, row.value, row.priority) == (True, "on", 3)
    assert db.session.scalar(select(func.count(AuditEvent.id))) == 1
    assert db.session.get(Environment, world.env.id).revision == revision + 1


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"value_type": "integer", "value": "4.5"}, "integer"),
        ({"value_type": "boolean", "value": "maybe"}, "boolean"),
        ({"priority": "x"}, "priority"),
        ({"feature_id": "999"}, "feature of this project"),
    ],
)
def test_create_override__invalid__422_inline_and_nothing_saved(
    client, auth, world, extra, message
):
    auth.login("editor@example.com")
    response = _create(client, world, **extra)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True).split('id="override-error">')[1]
    assert db.session.scalar(select(func.count(SegmentOverride.id))) == 0


def test_create_override__duplicate__422(client, auth, world):
    auth.login("editor@example.com")
    _create(client, world)
    response = _create(client, world)
    assert response.status_code == 422 and "already overrides" in response.get_data(as_text=True)


def test_update_override__editor__changes_value_and_audits(client, auth, world):
    auth.login("editor@example.com")
    _create(client, world)
    row = db.session.scalars(select(SegmentOverride)).one()
    response = client.put(_url(world, f"/{row.id}"), headers=HX,
                          data={"value_type": "integer", "value": "7", "priority": "",
                                "version": row.version})  # fmt: skip
    assert response.status_code == 200
    db.session.expire_all()
    row = db.session.get(SegmentOverride, row.id)
    assert (row.enabled, row.value, row.priority, row.version) == (False, 7, None, 2)
    assert db.session.scalar(select(func.count(AuditEvent.id))) == 2


def test_delete_override__editor__removes_and_audits(client, auth, world):
    auth.login("editor@example.com")
    _create(client, world)
    row = db.session.scalars(select(SegmentOverride)).one()
    response = client.delete(_url(world, f"/{row.id}"), query_string={"version": 1}, headers=HX)
    assert response.status_code == 200 and 'id="overrides-empty"' in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count(SegmentOverride.id))) == 0
    assert db.session.scalar(
        select(func.count(AuditEvent.id)).where(AuditEvent.action == "delete")
    ) == 1


@pytest.mark.parametrize("role", ["viewer", "qa"])
def test_override_changes__viewer_or_qa__403_and_nothing_changes(client, auth, world, role):
    auth.login(f"{role}@example.com")
    assert _create(client, world).status_code == 403
    assert client.put(_url(world, "/1"), data={"value_type": "null"}).status_code == 403
    assert client.delete(_url(world, "/1")).status_code == 403
    assert db.session.scalar(select(func.count(SegmentOverride.id))) == 0


def test_create_override__only_enabled_ticked__keeps_no_value(client, auth, world):
    # Given the add form as the page renders it: only the feature and "Enabled" are set
    auth.login("editor@example.com")
    html = client.get(
        f"/environments/{world.env.id}/segments/{world.segment.id}?tab=overrides"
    ).get_data(as_text=True)
    form = html.split('id="new-override"')[1].split("</form>")[0]
    options = form.split('id="new-override-type"')[1].split("</select>")[0].split("<option")
    default = next(o for o in options if "selected" in o).split('value="')[1].split('"')[0]
    assert default == "null"
    # When it is submitted with the default type and an empty value
    response = client.post(
        _url(world),
        data={"feature_id": world.feature.id, "enabled": "y", "value_type": default, "value": ""},
        headers=HX,
    )
    # Then the override stores no value (members keep null), not the string ""
    assert response.status_code == 200
    row = db.session.scalars(select(SegmentOverride)).one()
    assert row.value is None and row.value_type == "null"


def test_new_override_form__offers_the_identity_overrides_value_kinds(client, auth, world):
    from webapp.forms.identities import OVERRIDE_KINDS

    auth.login("editor@example.com")
    html = client.get(
        f"/environments/{world.env.id}/segments/{world.segment.id}?tab=overrides"
    ).get_data(as_text=True)
    select_html = html.split('id="new-override-type"')[1].split("</select>")[0]
    offered = [part.split('"')[0] for part in select_html.split('value="')[1:]]
    assert offered == [choice.value for choice in OVERRIDE_KINDS]


def test_create_override__json__is_validated_and_stored(client, auth, world):
    auth.login("editor@example.com")
    refused = _create(client, world, value_type="json", value="{")
    assert refused.status_code == 422 and "Not valid JSON" in refused.get_data(as_text=True)
    response = _create(client, world, value_type="json", value=' {"a": [1, 2]} ')
    assert response.status_code == 200
    assert db.session.scalars(select(SegmentOverride)).one().value == '{"a": [1, 2]}'
