"""Segments list and detail pages: counts, search, members, partials."""

from __future__ import annotations

import pytest

from tests.factories import make_identity, make_segment
from tests.web.segments.conftest import HX
from webapp.extensions import db

# Pages: runs once, on SQLite (see tests/conftest.py).
pytestmark = pytest.mark.databases("sqlite")


def test_index__viewer__lists_segments_with_member_counts(client, auth, world):
    # Given a viewer
    auth.login("viewer@example.com")
    # When opening the Segments page
    response = client.get(f"/environments/{world.env.id}/segments")
    # Then the segment shows its conditions and member count (alice and carol)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<html" in html and f'id="segment-{world.segment.id}"' in html
    row = html.split(f'id="segment-{world.segment.id}"')[1]
    assert '<td class="member-count">2</td>' in row
    assert '<td class="conditions">1</td>' in row


def test_index__htmx_search__returns_partial_filtered_by_name(client, auth, world):
    # Given a second segment
    make_segment(world.project, "Germans", rules=[{"type": "ALL", "rules": [], "conditions": [
        {"property_": "country", "operator": "EQUAL", "value": "DE"}]}])  # fmt: skip
    db.session.commit()
    auth.login("viewer@example.com")
    # When searching through htmx
    response = client.get(f"/environments/{world.env.id}/segments?q=germ", headers=HX)
    # Then only the partial with the matching segment comes back
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert html.lstrip().startswith('<div id="segments-list">')
    assert "<html" not in html and "Germans" in html and "Pro users" not in html
    assert "HX-Request" in response.headers["Vary"]


def test_index__no_role__is_404(client, auth, world, app):
    # Given a user of another project
    from tests.factories import make_project, make_user

    make_user("other@example.com", "admin", make_project("Other"))
    db.session.commit()
    auth.login("other@example.com")
    # When / Then
    assert client.get(f"/environments/{world.env.id}/segments").status_code == 404


def test_detail__rules_tab__shows_conditions(client, auth, world):
    auth.login("viewer@example.com")
    response = client.get(f"/environments/{world.env.id}/segments/{world.segment.id}")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'id="segment-rules"' in html and "plan" in html


def test_detail__members_tab__lists_matching_identities(client, auth, world):
    auth.login("viewer@example.com")
    response = client.get(f"/environments/{world.env.id}/segments/{world.segment.id}?tab=members")
    html = response.get_data(as_text=True)
    assert f'id="member-{world.alice.id}"' in html and f'id="member-{world.carol.id}"' in html
    assert f'id="member-{world.bob.id}"' not in html
    assert f'href="/environments/{world.env.id}/identities/{world.alice.id}"' in html


def test_members__htmx_search_and_keyset__returns_partial_page(client, auth, world):
    # Given many pro identities
    for n in range(60):
        make_identity(world.env, f"pro-{n:02d}", {"plan": "pro"})
    db.session.commit()
    auth.login("viewer@example.com")
    url = f"/environments/{world.env.id}/segments/{world.segment.id}/members"
    # When asking for the first page, then the next one, then searching
    first = client.get(url, headers=HX).get_data(as_text=True)
    assert first.lstrip().startswith('<div id="segment-members">') and "<html" not in first
    assert first.count('id="member-') == 50 and 'id="members-next"' in first
    last_id = int(first.rsplit('id="member-', 1)[1].split('"')[0])
    second = client.get(f"{url}?after={last_id}", headers=HX).get_data(as_text=True)
    searched = client.get(f"{url}?q=PRO-07", headers=HX).get_data(as_text=True)
    # Then pages continue after the last id and search filters identifiers
    assert second.count('id="member-') == 12  # 62 members: alice, carol and 60 more
    assert searched.count('id="member-') == 1 and "pro-07" in searched


def test_detail__segment_of_other_project__is_404(client, auth, world):
    from tests.factories import make_project

    other = make_segment(make_project("Other"), "Elsewhere")
    db.session.commit()
    auth.login("viewer@example.com")
    assert client.get(f"/environments/{world.env.id}/segments/{other.id}").status_code == 404


def test_detail__editor__delete_button_confirms_naming_overrides(client, auth, world):
    # Given an override on the segment
    from webapp.models import User
    from webapp.services.segments import segment_overrides

    editor = db.session.query(User).filter_by(email="editor@example.com").one()
    segment_overrides.create_override(world.segment, world.feature, world.env.id, editor,
                                      enabled=True, value="on")  # fmt: skip
    auth.login("editor@example.com")
    # When opening the detail page
    html = client.get(f"/environments/{world.env.id}/segments/{world.segment.id}").get_data(
        as_text=True
    )
    # Then the delete confirmation names the override that goes with it
    expected = "Delete segment “Pro users”? Its overrides go with it: banner (Production)."
    assert f'hx-confirm="{expected}' in html
