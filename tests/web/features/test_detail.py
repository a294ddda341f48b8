"""Feature detail: segment override priorities (reorder, conflicts) and identity overrides."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.factories import (
    features_make_identity_override,
    features_make_segment_override,
    make_identity,
    make_segment,
)
from tests.web.features.conftest import HX, assert_partial, audit_events, count, revisions
from webapp.extensions import db
from webapp.models import IdentityOverride, SegmentOverride

# Pages: runs once, on SQLite (see tests/conftest.py).
pytestmark = pytest.mark.databases("sqlite")


@pytest.fixture
def three(world):
    """Three overrides of dark_mode in Development with priorities 5, NULL and 2."""
    segments = [
        make_segment(world.project, name, position=i)
        for i, name in enumerate(("Beta", "Staff", "Germany"))
    ]
    beta = features_make_segment_override(segments[0], world.dark, world.env, "beta", priority=5)
    staff = features_make_segment_override(segments[1], world.dark, world.env, "staff", None)
    germany = features_make_segment_override(segments[2], world.dark, world.env, "de", priority=2)
    db.session.commit()
    return germany, beta, staff  # evaluation order: 2, 5, NULL


def _priorities() -> dict[str, int | None]:
    db.session.expire_all()
    rows = db.session.scalars(select(SegmentOverride))
    return {r.segment.name: r.priority for r in rows}


def _ids(*rows) -> str:
    return ",".join(str(r.id) for r in rows)


def test_detail__viewer__full_page_lists_overrides_winner_first(client, auth, world, three):
    auth.login("viewer@example.com")
    response = client.get(world.url(f"/{world.dark.id}"))
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" in body
    positions = [body.index(f'id="segment-override-{o.id}"') for o in three]
    assert positions == sorted(positions)
    assert "(unset)" in body
    # a viewer sees no move controls and no delete
    assert "move-up" not in body and 'id="delete-feature"' not in body


def test_detail__editor__up_down_buttons_carry_the_new_order(client, editor, three):
    germany, beta, staff = three
    body = client.get(editor.url(f"/{editor.dark.id}")).get_data(as_text=True)
    assert f'name="expected" value="{_ids(germany, beta, staff)}"' in body
    assert f'name="order" value="{_ids(beta, germany, staff)}" class="move-up"' in body
    assert f'name="order" value="{_ids(germany, staff, beta)}" class="move-down"' in body


def test_reorder__move_up__rewrites_priorities_audits_and_bumps(client, editor, three):
    world = editor
    germany, beta, staff = three
    before = revisions(world.env, world.prod)
    # When the editor moves "Staff" above "Beta"
    response = client.post(
        world.url(f"/{world.dark.id}/segment-overrides/order"),
        data={"order": _ids(germany, staff, beta), "expected": _ids(germany, beta, staff)},
        headers=HX,
    )
    # Then the list comes back in the new order with priorities 0..n-1
    body = assert_partial(response, "segment-overrides")
    assert response.status_code == 200
    assert _priorities() == {"Germany": 0, "Staff": 1, "Beta": 2, "Pro users": 0}
    assert body.index(f"segment-override-{staff.id}") < body.index(f"segment-override-{beta.id}")
    # and the reorder is audited with before/after and bumps only this environment
    (event,) = audit_events("segment_override")
    assert event.action == "reorder" and event.environment_id == world.env.id
    assert event.before == {"Germany": 2, "Beta": 5, "Staff": None}
    assert event.after == {"Germany": 0, "Staff": 1, "Beta": 2}
    assert revisions(world.env, world.prod) == [before[0] + 1, before[1]]


def test_reorder__list_changed_since_opened__is_409_with_current_list(client, editor, three):
    world = editor
    germany, beta, staff = three
    # Given the page was opened before "Beta" got a new neighbour
    seen = _ids(germany, beta, staff)
    newcomer = features_make_segment_override(
        make_segment(world.project, "New"), world.dark, world.env, "n", priority=0
    )
    db.session.commit()
    # When the editor submits a move based on the old list
    response = client.post(
        world.url(f"/{world.dark.id}/segment-overrides/order"),
        data={"order": _ids(beta, germany, staff), "expected": seen},
        headers=HX,
    )
    # Then nothing moves and the current list comes back with a clear message
    assert response.status_code == 409
    body = assert_partial(response, "segment-overrides")
    assert "changed since you opened this page" in body
    assert f"segment-override-{newcomer.id}" in body
    assert _priorities()["Beta"] == 5 and audit_events() == []


def test_reorder__plain_post_conflict__redirects_with_message(client, editor, three):
    germany, beta, staff = three
    response = client.post(
        editor.url(f"/{editor.dark.id}/segment-overrides/order"),
        data={"order": _ids(beta, germany, staff), "expected": "1"},
    )
    assert response.status_code == 302
    assert response.headers["Location"].endswith(editor.url(f"/{editor.dark.id}"))
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "changed since you opened this page" in page


@pytest.mark.parametrize("order", ["1,2", "x,y", "", "{a},{a},{b}"])
def test_reorder__order_not_a_permutation__is_422(client, editor, three, order):
    germany, beta, staff = three
    order = order.format(a=germany.id, b=beta.id)
    response = client.post(
        editor.url(f"/{editor.dark.id}/segment-overrides/order"),
        data={"order": order, "expected": _ids(germany, beta, staff)},
        headers=HX,
    )
    assert response.status_code == 422
    assert 'id="segment-overrides-message"' in assert_partial(response, "segment-overrides")
    assert _priorities()["Beta"] == 5


@pytest.mark.parametrize("role", ["viewer", "qa"])
def test_reorder__viewer_or_qa__is_403_and_changes_nothing(client, auth, world, three, role):
    germany, beta, staff = three
    auth.login(f"{role}@example.com")
    response = client.post(
        world.url(f"/{world.dark.id}/segment-overrides/order"),
        data={"order": _ids(staff, beta, germany), "expected": _ids(germany, beta, staff)},
        headers=HX,
    )
    assert response.status_code == 403 and _priorities()["Beta"] == 5


@pytest.fixture
def many(world):
    """30 identities overriding dark_mode in Development, one in Production."""
    for i in range(30):
        identity = make_identity(world.env, f"user-{i:02d}")
        features_make_identity_override(identity, world.dark, value=f"v{i}")
    features_make_identity_override(make_identity(world.prod, "prod-user"), world.dark, "p")
    db.session.commit()


def test_identity_overrides__first_page_on_detail__25_sorted_by_identifier(
    client, auth, world, many
):
    auth.login("viewer@example.com")
    body = client.get(world.url(f"/{world.dark.id}")).get_data(as_text=True)
    assert "user-00" in body and "user-24" in body and "user-25" not in body
    assert "prod-user" not in body
    assert ">30 in Development<" in body.replace("</small>", "<")
    assert "remove-identity-override" not in body


def test_identity_overrides__htmx_page_2__partial(client, auth, world, many):
    auth.login("viewer@example.com")
    response = client.get(world.url(f"/{world.dark.id}/identity-overrides?page=2"), headers=HX)
    body = assert_partial(response, "identity-overrides")
    assert "user-25" in body and "user-29" in body and "user-00" not in body
    assert 'rel="prev"' in body and 'rel="next"' not in body


def test_identity_overrides__full_page_request__renders_detail(client, auth, world, many):
    auth.login("viewer@example.com")
    body = client.get(world.url(f"/{world.dark.id}/identity-overrides?page=2")).get_data(
        as_text=True
    )
    assert "<html" in body and "user-25" in body


def test_remove_identity_override__editor__deletes_audits_and_bumps(client, editor):
    world = editor
    override = db.session.scalar(select(IdentityOverride))
    before = revisions(world.env, world.prod)
    body = client.get(world.url(f"/{world.limit.id}")).get_data(as_text=True)
    assert 'hx-confirm="Remove the override of max_upload for “alice”?' in body
    response = client.delete(
        world.url(f"/{world.limit.id}/identity-overrides/{override.id}"),
        query_string={"version": override.version},
        headers=HX,
    )
    body = assert_partial(response, "identity-overrides")
    assert "alice" not in body and count(IdentityOverride) == 0
    (event,) = audit_events("identity_override")
    assert (event.action, event.identity_id, event.environment_id, event.object_id) == (
        "delete",
        override.identity_id,
        world.env.id,
        str(world.limit.id),
    )
    assert event.before["enabled"] is True and event.before["value"] == 1000
    assert event.after is None
    assert revisions(world.env, world.prod) == [before[0] + 1, before[1]]


def test_remove_identity_override__of_other_feature__is_404(client, editor):
    override = db.session.scalar(select(IdentityOverride))
    response = client.delete(
        editor.url(f"/{editor.dark.id}/identity-overrides/{override.id}"),
        query_string={"version": override.version},
        headers=HX,
    )
    assert response.status_code == 404 and count(IdentityOverride) == 1


@pytest.mark.parametrize("role", ["viewer", "qa"])
def test_remove_identity_override__viewer_or_qa__is_403(client, auth, world, role):
    override = db.session.scalar(select(IdentityOverride))
    auth.login(f"{role}@example.com")
    response = client.delete(
        world.url(f"/{world.limit.id}/identity-overrides/{override.id}"), headers=HX
    )
    assert response.status_code == 403 and count(IdentityOverride) == 1
