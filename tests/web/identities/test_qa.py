"""The QA flow: "This is me", My identities, reset all my overrides, expired-override cleanup."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.factories import identities_make_link, identities_make_override
from tests.web.identities.conftest import HX, count, events, overrides_of, revision
from webapp.clock import utcnow
from webapp.extensions import db
from webapp.models import AuditEvent, IdentityLink, IdentityOverride, User

# Pages: runs once, on SQLite (see tests/conftest.py).
pytestmark = pytest.mark.databases("sqlite")


def _links(identity):
    db.session.expire_all()
    return sorted(
        db.session.scalars(
            select(User.email)
            .join(IdentityLink, IdentityLink.user_id == User.id)
            .where(IdentityLink.identity_id == identity.id)
        )
    )


def test_link__qa_with_exact_identifier__links_and_redirects(client, auth, world):
    # Given a QA user on bob's page
    auth.login("qa@example.com")
    # When they type bob's identifier exactly as proof
    response = client.post(
        world.url(world.bob, "/link"), data={"proof": world.bob.identifier}, headers=HX
    )
    # Then bob is linked to them (audited) and the page reloads
    assert response.status_code == 200
    assert response.headers["HX-Redirect"].endswith(world.url(world.bob))
    assert _links(world.bob) == ["qa@example.com"]
    assert events()[-1].object_type == "identity_link"
    # And they may now change bob
    toggle = client.post(
        world.flag_url("dark_mode", "/toggle", world.bob),
        data=world.page_data("dark_mode", world.bob),
        headers=HX,
    )
    assert toggle.status_code == 200


@pytest.mark.parametrize("proof", ["", "bob", "BOB@ACME.TEST", "bob@acme.test "])
def test_link__qa_with_wrong_proof__is_422_and_links_nothing(client, auth, world, proof):
    auth.login("qa@example.com")
    response = client.post(world.url(world.bob, "/link"), data={"proof": proof}, headers=HX)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert html.lstrip().startswith('<form id="link-form"') and "exactly" in html
    assert _links(world.bob) == [] and count(AuditEvent) == 0


def test_link__qa_naming_someone_else__is_403(client, auth, world):
    auth.login("qa@example.com")
    response = client.post(
        world.url(world.bob, "/link"),
        data={"proof": world.bob.identifier, "email": "qa2@example.com"},
        headers=HX,
    )
    assert response.status_code == 403
    assert _links(world.bob) == []


def test_link__editor__links_anyone_without_proof(client, auth, world):
    auth.login("editor@example.com")
    response = client.post(
        world.url(world.bob, "/link"), data={"email": "qa2@example.com"}, headers=HX
    )
    assert response.status_code == 200
    assert _links(world.bob) == ["qa2@example.com"]


def test_link__editor_naming_unknown_user__is_422(client, auth, world):
    auth.login("editor@example.com")
    response = client.post(
        world.url(world.bob, "/link"), data={"email": "nobody@example.com"}, headers=HX
    )
    assert response.status_code == 422
    assert _links(world.bob) == []


def test_link__viewer__is_403(client, auth, world):
    auth.login("viewer@example.com")
    response = client.post(
        world.url(world.bob, "/link"), data={"proof": world.bob.identifier}, headers=HX
    )
    assert response.status_code == 403
    assert _links(world.bob) == []


def test_unlink__own_link__removes_it(client, auth, world):
    auth.login("qa@example.com")
    qa = db.session.scalar(select(User).where(User.email == "qa@example.com"))
    response = client.delete(world.url(suffix=f"/link/{qa.id}"), headers=HX)
    assert response.status_code == 200
    assert _links(world.alice) == []


def test_unlink__someone_elses_link_as_qa__is_403(client, auth, world):
    qa = db.session.scalar(select(User).where(User.email == "qa@example.com"))
    auth.login("qa2@example.com")
    assert client.delete(world.url(suffix=f"/link/{qa.id}"), headers=HX).status_code == 403
    assert _links(world.alice) == ["qa@example.com"]


def test_mine__full_page_and_partial__list_linked_identities(client, auth, world):
    auth.login("qa@example.com")
    url = f"/environments/{world.environment.id}/my-identities"
    page = client.get(url)
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "<html" in html
    assert "alice@acme.test" in html and "bob@acme.test" not in html
    assert ">My identities</a>" in html  # the navigation entry
    partial = client.get(url, headers=HX)
    assert (
        partial.get_data(as_text=True)
        .lstrip()
        .startswith('<section class="card" id="my-identities"')
    )
    assert "HX-Request" in partial.headers["Vary"]


def test_mine__other_project__is_404(client, auth, world):
    auth.login("outsider@example.com")
    assert client.get(f"/environments/{world.environment.id}/my-identities").status_code == 404


def test_reset_mine__removes_only_my_overrides_in_one_event(client, auth, world):
    # Given the QA user's two linked identities have overrides, and bob (not theirs) one
    qa = db.session.scalar(select(User).where(User.email == "qa@example.com"))
    carol = __import__("tests.factories", fromlist=["make_identity"]).make_identity(
        world.environment, "carol"
    )
    identities_make_link(qa, carol)
    identities_make_override(world.alice, world.features["dark_mode"], True)
    identities_make_override(world.alice, world.features["welcome"], True, "x")
    identities_make_override(carol, world.features["dark_mode"], True)
    identities_make_override(world.bob, world.features["dark_mode"], True)
    db.session.commit()
    auth.login("qa@example.com")
    before = revision(world.environment)
    # When they reset all their overrides
    response = client.post(
        f"/environments/{world.environment.id}/my-identities/reset-overrides", headers=HX
    )
    # Then only theirs are gone, recorded as one event with the count
    assert response.status_code == 200
    assert "Removed 3 overrides" in response.get_data(as_text=True)
    assert overrides_of(world.alice) == [] and overrides_of(carol) == []
    assert len(overrides_of(world.bob)) == 1
    [event] = events()
    assert (event.action, event.count, event.object_type) == ("reset", 3, "identity_override")
    assert revision(world.environment) == before + 1


def test_reset_mine__viewer__is_403(client, auth, world):
    identities_make_override(world.alice, world.features["dark_mode"], True)
    db.session.commit()
    auth.login("viewer@example.com")
    response = client.post(
        f"/environments/{world.environment.id}/my-identities/reset-overrides", headers=HX
    )
    assert response.status_code == 403
    assert count(IdentityOverride) == 1


def test_cleanup_overrides__cli__deletes_expired_and_records_one_event(runner, world):
    # Given one expired and one live override
    identities_make_override(
        world.alice, world.features["dark_mode"], True, expires_at=utcnow() - timedelta(seconds=1)
    )
    identities_make_override(
        world.bob, world.features["dark_mode"], True, expires_at=utcnow() + timedelta(hours=1)
    )
    db.session.commit()
    before = revision(world.environment)
    # When the cleanup runs
    result = runner.invoke(args=["cleanup-overrides"])
    # Then only the expired one is gone, recorded once, and the environment bumped
    assert result.exit_code == 0, result.output
    assert "Removed 1 expired identity override." in result.output
    assert overrides_of(world.alice) == [] and len(overrides_of(world.bob)) == 1
    [event] = events()
    assert (event.action, event.count, event.actor_label) == ("cleanup", 1, "system")
    assert revision(world.environment) == before + 1


def test_cleanup_overrides__nothing_expired__records_nothing(runner, world):
    result = runner.invoke(args=["cleanup-overrides"])
    assert result.exit_code == 0
    assert "Removed 0" in result.output and events() == []
