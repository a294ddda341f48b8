"""Erasing from the Identity page and the Users page; what the audit log shows afterwards.

Roles: editors and admins erase (like deleting); viewers and QA users, even on an identity
linked to them, may not. A page left open on an erased identity gets a clear 404 message
on every action, never a 500.
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from tests.web.identities.conftest import HX, count, events
from webapp.extensions import db
from webapp.models import AuditEvent, Identity, IdentityLink, Trait

# Pages, roles and wording: runs once, on SQLite (the erasure's database behaviour is
# tested on both databases in tests/services/test_erase.py).
pytestmark = pytest.mark.databases("sqlite")

GONE = "No such identity: it does not exist in this environment."
TOKEN = re.compile(r"erased:[0-9a-f]{16}")


def _erase(client, world, identity=None, **kwargs):
    return client.post(world.url(identity, "/erase"), **kwargs)


@pytest.mark.parametrize("role", ["editor", "admin"])
def test_identity_page__editor_or_admin__shows_the_erase_button(client, auth, world, role):
    auth.login(f"{role}@example.com")
    body = client.get(world.url()).get_data(as_text=True)
    assert 'id="erase-identity"' in body
    assert "This cannot be undone" in body


@pytest.mark.parametrize("role", ["viewer", "qa"])
def test_identity_page__viewer_or_qa__no_erase_button(client, auth, world, role):
    auth.login(f"{role}@example.com")
    body = client.get(world.url()).get_data(as_text=True)
    assert 'id="erase-identity"' not in body


def test_erase__plain_post__redirects_to_users_with_the_token(client, auth, world):
    # Given an editor on alice's page (alice is linked to a QA user)
    auth.login("editor@example.com")
    alice_id = world.alice.id
    # When they erase her
    response = _erase(client, world)
    # Then they land on the Users page, told the code the audit log now uses
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/environments/{world.environment.id}/users")
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    [token] = set(TOKEN.findall(page))
    assert f"Identity erased. The audit log now calls it {token}." in page
    assert "alice@acme.test" not in page
    # ... and she, her traits and her QA link are gone
    assert db.session.get(Identity, alice_id) is None
    assert db.session.scalar(select(Trait).where(Trait.identity_id == alice_id)) is None
    link = select(IdentityLink).where(IdentityLink.identity_id == alice_id)
    assert db.session.scalar(link) is None


def test_erase__htmx__answers_with_hx_redirect(client, auth, world):
    auth.login("admin@example.com")
    response = _erase(client, world, headers=HX)
    assert response.status_code == 200
    assert response.headers["HX-Redirect"].endswith(f"/environments/{world.environment.id}/users")


@pytest.mark.parametrize("role", ["viewer", "qa"])
def test_erase__below_editor__403_even_on_an_own_identity(client, auth, world, role):
    auth.login(f"{role}@example.com")  # qa@example.com is linked to alice
    before = (count(Identity), count(AuditEvent))
    response = _erase(client, world, headers=HX)
    assert response.status_code == 403
    assert (count(Identity), count(AuditEvent)) == before


def test_audit_log__after_erasure__reads_with_the_token_and_no_identifier(client, auth, world):
    # Given alice's history: a trait change made from her page
    auth.login("editor@example.com")
    client.put(world.url(suffix="/traits/plan"), data=world.trait_data("plan", value="team",
               value_type="string"), headers=HX)  # fmt: skip
    assert any(e.object_label == "plan on alice@acme.test" for e in events())
    # When she is erased
    _erase(client, world)
    # Then the audit log page names her by the token only, in sentences that still read
    page = client.get(f"/environments/{world.environment.id}/audit").get_data(as_text=True)
    [token] = [e.object_label for e in events() if e.action == "erase"]
    assert TOKEN.fullmatch(token)
    assert "alice@acme.test" not in page
    rows = re.findall(r'<tr id="audit-event-\d+" class="audit-event">(.*?)</tr>', page, re.S)
    text = [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row)).strip() for row in rows]
    assert any(f"editor@example.com erased identity {token}" in t for t in text), text
    assert any(f"changed trait plan on {token}" in t for t in text), text


def test_stale_page__identity_erased_meanwhile__every_action_gets_a_clear_404(client, auth, world):
    # Given an editor who opened alice's page, and alice erased from another session
    auth.login("editor@example.com")
    trait = world.trait_data("plan", value="x", value_type="string")
    toggle = world.page_data("dark_mode", expires="never")
    url, flag_url = world.url(), world.flag_url("dark_mode", "/toggle")
    assert _erase(client, world).status_code == 302
    # When the stale page sends its changes
    attempts = {
        "add trait": client.post(url + "/traits", data={"key": "k", "value": "v",
                                 "value_type": "string"}, headers=HX),
        "update trait": client.put(url + "/traits/plan", data=trait, headers=HX),
        "delete trait": client.delete(url + "/traits/plan", data=trait, headers=HX),
        "toggle override": client.post(flag_url, data=toggle, headers=HX),
        "link": client.post(url + "/link", data={"proof": "", "email": "qa2@example.com"},
                            headers=HX),
        "erase again": client.post(url + "/erase", headers=HX),
        "open the page": client.get(url),
    }  # fmt: skip
    # Then each is refused with the same plain message
    for name, response in attempts.items():
        assert response.status_code == 404, name
        assert GONE in response.get_data(as_text=True), name


def test_qa_user__own_identity_erased__my_identities_still_works(client, auth, world):
    auth.login("editor@example.com")
    _erase(client, world)
    auth.logout()
    auth.login("qa@example.com")
    response = client.get(f"/environments/{world.environment.id}/my-identities")
    assert response.status_code == 200
    assert "alice@acme.test" not in response.get_data(as_text=True)
    reset = client.post(f"/environments/{world.environment.id}/my-identities/reset-overrides",
                        headers=HX)  # fmt: skip
    assert reset.status_code < 500


# ----------------------------------------------------------------------------- Users page


def test_users_bulk_erase__preview__names_the_count_and_what_erasing_does(client, auth, world):
    auth.login("editor@example.com")
    users = f"/environments/{world.environment.id}/users"
    response = client.post(users + "/bulk/preview", data={"q": "", "action": "erase"},
                           headers=HX)  # fmt: skip
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'id="bulk-erase-note"' in body
    confirm = "Erase the identities (right to be forgotten): 2 identities. This cannot be undone."
    assert confirm in body
    assert 'value="2"' in body  # the confirmed count travels with the form


def test_users_bulk_erase__confirmed__erases_all_matching_and_audits_once(client, auth, world):
    # Given two identities matching "plan = pro" or "plan = free"
    auth.login("editor@example.com")
    users = f"/environments/{world.environment.id}/users"
    data = {"q": "plan = pro", "action": "erase", "expected": "1"}
    # When the editor confirms erasing the one matching "plan = pro"
    response = client.post(users + "/bulk", data=data, headers=HX)
    # Then bob is gone, alice stays, and one event counts one without quoting the search
    assert response.status_code == 200, response.get_data(as_text=True)
    assert "1 identity changed" in response.get_data(as_text=True)
    assert [i.identifier for i in db.session.scalars(select(Identity))] == ["alice@acme.test"]
    [event] = [e for e in events() if e.action == "bulk_erase"]
    assert event.count == 1 and "plan" not in event.object_label
    assert event.object_label == "1 identity from a search"


def test_audit_log__identity_filter_with_the_token__shows_the_erased_identitys_events(
    client, auth, world
):
    # Given changes to alice and to bob, then alice erased
    auth.login("editor@example.com")
    for identity in (world.alice, world.bob):
        data = world.trait_data("plan", identity, value="team", value_type="string")
        client.put(world.url(identity, "/traits/plan"), data=data, headers=HX)
    _erase(client, world)
    [token] = [e.object_label for e in events() if e.action == "erase"]
    # When the audit log is filtered by her token
    url = f"/environments/{world.environment.id}/audit?identity={token}"
    page = client.get(url).get_data(as_text=True)
    # Then it lists her trait change and her erasure, and nothing of bob
    assert page.count('class="audit-event"') == 2
    assert f"plan on {token}" in page and "bob@acme.test" not in page


def test_users_bulk_erase__plain_post__redirects_without_the_search(client, auth, world):
    auth.login("editor@example.com")
    users = f"/environments/{world.environment.id}/users"
    data = {"q": "plan = pro", "action": "erase", "expected": "1"}
    response = client.post(users + "/bulk", data=data)
    assert response.status_code == 302
    assert response.headers["Location"].endswith(users)  # no ?q=plan…: it may quote the data


# ----------------------------------------------------------------------------- selected rows


def _users(world) -> str:
    return f"/environments/{world.environment.id}/users"


def test_users_page__editor__each_row_has_a_checkbox_for_the_bulk_form(client, auth, world):
    auth.login("editor@example.com")
    body = client.get(_users(world)).get_data(as_text=True)
    for identity in (world.alice, world.bob):
        assert f'name="selected" value="{identity.id}" form="bulk-preview-form"' in body
    assert 'id="bulk-preview-form"' in body


def test_users_bulk_erase__selected_rows__previews_and_erases_only_those(client, auth, world):
    # Given the editor ticked bob (and alice stays unticked)
    auth.login("editor@example.com")
    data = {"q": "", "action": "erase", "selected": [str(world.bob.id)]}
    # When they preview, then confirm
    preview = client.post(_users(world) + "/bulk/preview", data=data, headers=HX)
    body = preview.get_data(as_text=True)
    assert "This affects <strong>1</strong> identity of the 1 selected row" in body
    assert f'name="selected" type="hidden" value="{world.bob.id}"' in body
    response = client.post(_users(world) + "/bulk", data={**data, "expected": "1"}, headers=HX)
    # Then only bob is erased
    assert response.status_code == 200, response.get_data(as_text=True)
    assert [i.identifier for i in db.session.scalars(select(Identity))] == ["alice@acme.test"]


def test_users_bulk__selected_from_another_environment__matches_nothing(client, auth, world):
    from tests.factories import make_identity

    stranger = make_identity(world.other_environment, "stranger")
    db.session.commit()
    auth.login("editor@example.com")
    data = {"q": "", "action": "erase", "selected": [str(stranger.id)]}
    body = client.post(_users(world) + "/bulk/preview", data=data, headers=HX).get_data(True)
    assert "This affects <strong>0</strong> identities" in body


@pytest.mark.parametrize(
    ("selected", "message"),
    [
        (["abc"], "Selected identities: “abc” is not a valid id."),
        ([str(2**31)], "Selected identities not found."),
        ([",".join(str(i) for i in range(1, 1002))], "Select at most 1,000 identities at once."),
    ],
)
def test_users_bulk__bad_selection__422_inline_message(client, auth, world, selected, message):
    auth.login("editor@example.com")
    data = {"q": "", "action": "erase", "selected": selected}
    response = client.post(_users(world) + "/bulk/preview", data=data, headers=HX)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
