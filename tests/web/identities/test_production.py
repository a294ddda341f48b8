"""Production environments on the pages: the setting, the rule shown before trying, and
links that stop counting (issue 15). The rule's cases are in
tests/hardening/test_production_links.py; these are about what each page says and does."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.factories import identities_make_link, identities_make_override, make_identity
from tests.web.identities.conftest import HX, World, events, overrides_of, revision
from webapp.extensions import db
from webapp.models import Environment, IdentityLink, User
from webapp.services.identities import editing_rights

pytestmark = pytest.mark.databases("sqlite")  # pages and rules: runs once

QA_EMAIL = "qa@example.com"


def _user(email: str) -> User:
    user = db.session.scalar(select(User).where(User.email == email))
    assert user is not None
    return user


def _production(world: World, *, client_traits: bool = True) -> None:
    world.environment.production = True
    world.environment.allow_client_traits = client_traits
    db.session.commit()


def _links(identity_id: int) -> list[str]:
    db.session.expire_all()
    return sorted(
        db.session.scalars(
            select(User.email)
            .join(IdentityLink, IdentityLink.user_id == User.id)
            .where(IdentityLink.identity_id == identity_id)
        )
    )


def _toggle(client, world: World, identity):
    data = world.page_data("dark_mode", identity, expires="never")
    return client.post(world.flag_url("dark_mode", "/toggle", identity), data=data, headers=HX)


# ---- the rule, said before trying --------------------------------------------------------


def test_identity_page__not_production__says_any_identity_and_offers_the_form(client, auth, world):
    auth.login(QA_EMAIL)
    html = client.get(world.url(world.bob)).get_data(as_text=True)
    assert 'id="link-rule"' in html and "any identity here" in html
    assert 'id="link-proof"' in html and 'id="link-refused"' not in html


def test_identity_page__production_customer__states_the_rule_and_offers_no_form(
    client, auth, world
):
    # Given a production environment (its email traits can be written with the client key)
    _production(world)
    auth.login(QA_EMAIL)
    # When the QA user opens a customer's page
    html = client.get(world.url(world.bob)).get_data(as_text=True)
    # Then the page says which identities they may link, and offers no "This is me"
    assert "Production environment: you can link only identities whose identifier is" in html
    assert QA_EMAIL in html and "Email traits do not count here" in html
    assert 'id="link-refused"' in html and 'id="this-is-me"' not in html


def test_identity_page__production_own_identity__offers_the_form_with_the_rule(client, auth, world):
    _production(world, client_traits=False)
    mine = make_identity(world.environment, "u-7", traits={"email": "QA@example.com"})
    db.session.commit()
    auth.login(QA_EMAIL)
    html = client.get(world.url(mine)).get_data(as_text=True)
    assert "whose identifier or email trait is qa@example.com" in html
    assert 'id="link-proof"' in html and 'id="link-refused"' not in html


@pytest.mark.parametrize("role", ["editor", "admin"])
def test_identity_page__production_editor__links_anyone_without_the_rule(client, auth, world, role):
    _production(world)
    auth.login(f"{role}@example.com")
    html = client.get(world.url(world.bob)).get_data(as_text=True)
    assert 'id="link-email"' in html and 'id="link-rule"' not in html


def test_identity_page__viewer__sees_no_link_area(client, auth, world):
    _production(world)
    auth.login("viewer@example.com")
    html = client.get(world.url(world.bob)).get_data(as_text=True)
    assert 'id="link-form"' not in html and 'id="link-rule"' not in html


def test_mine__qa__states_the_rule_for_the_environment(client, auth, world):
    auth.login(QA_EMAIL)
    url = f"/environments/{world.environment.id}/my-identities"
    assert "any identity here" in client.get(url).get_data(as_text=True)
    _production(world, client_traits=False)
    html = client.get(url, headers=HX).get_data(as_text=True)
    assert "whose identifier or email trait is qa@example.com" in html


def test_link__refused_in_production__toast_names_the_rule(client, auth, world):
    _production(world)
    auth.login(QA_EMAIL)
    response = client.post(
        world.url(world.bob, "/link"), data={"proof": world.bob.identifier}, headers=HX
    )
    assert response.status_code == 403
    assert "Production environment" in response.headers["HX-Trigger"]
    assert _links(world.bob.id) == []


def test_link__wrong_proof_on_own_identity__form_keeps_the_rule(client, auth, world):
    _production(world)
    mine = make_identity(world.environment, QA_EMAIL)
    db.session.commit()
    auth.login(QA_EMAIL)
    response = client.post(world.url(mine, "/link"), data={"proof": "qa"}, headers=HX)
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and 'id="link-rule"' in html and "exactly" in html


# ---- a link that stops counting -----------------------------------------------------------


def test_environment_becomes_production__own_link_stops_granting_edit(client, auth, world):
    # Given bob linked by the QA user while the environment was not production
    auth.login(QA_EMAIL)
    client.post(world.url(world.bob, "/link"), data={"proof": world.bob.identifier}, headers=HX)
    assert _toggle(client, world, world.bob).status_code == 200
    # When an admin marks the environment production
    _production(world)
    # Then the link stays, but no longer lets them change bob, and the pages say so
    assert _links(world.bob.id) == [QA_EMAIL]
    refused = _toggle(client, world, world.bob)
    assert refused.status_code == 403
    assert "no longer lets you change" in refused.headers["HX-Trigger"]
    page = client.get(world.url(world.bob)).get_data(as_text=True)
    assert 'id="link-read-only"' in page and 'class="toggle-override"' not in page
    mine = client.get(f"/environments/{world.environment.id}/my-identities")
    assert f'id="read-only-{world.bob.id}"' in mine.get_data(as_text=True)


def test_environment_becomes_production__reset_mine_leaves_read_only_links(client, auth, world):
    # Given overrides on alice (linked to the QA user) before production
    identities_make_override(world.alice, world.features["dark_mode"], True)
    db.session.commit()
    _production(world)
    auth.login(QA_EMAIL)
    # When they reset "all my overrides"
    client.post(f"/environments/{world.environment.id}/my-identities/reset-overrides")
    # Then alice (no longer theirs to change) keeps hers
    assert len(overrides_of(world.alice)) == 1


def test_production__link_made_by_an_editor__keeps_granting_edit(client, auth, world):
    _production(world)
    auth.login("editor@example.com")
    client.post(world.url(world.bob, "/link"), data={"email": QA_EMAIL}, headers=HX)
    auth.logout()
    auth.login(QA_EMAIL)
    assert _links(world.bob.id) == [QA_EMAIL]
    assert _toggle(client, world, world.bob).status_code == 200


def test_production__editor_links_again__vouches_for_a_self_made_link(client, auth, world):
    # Given alice, linked by the QA user themself, read-only once the environment is production
    _production(world)
    auth.login(QA_EMAIL)
    assert _toggle(client, world, world.alice).status_code == 403
    auth.logout()
    # When an editor links alice to them again
    auth.login("editor@example.com")
    response = client.post(world.url(world.alice, "/link"), data={"email": QA_EMAIL}, headers=HX)
    assert response.status_code == 200
    event = events()[-1]
    assert (event.object_type, event.before, event.after) == (
        "identity_link", {"user": QA_EMAIL}, {"user": QA_EMAIL, "linked_by": "editor@example.com"},
    )  # fmt: skip
    auth.logout()
    # Then the link counts again
    auth.login(QA_EMAIL)
    assert _toggle(client, world, world.alice).status_code == 200


def test_production__qa_changes_own_email_trait__loses_edit(client, auth, world):
    # Given the QA user linked their own identity by its email trait
    _production(world, client_traits=False)
    mine = make_identity(world.environment, "u-7", traits={"email": QA_EMAIL})
    db.session.commit()
    auth.login(QA_EMAIL)
    client.post(world.url(mine, "/link"), data={"proof": "u-7"}, headers=HX)
    assert _toggle(client, world, mine).status_code == 200
    # When they change that trait to a customer's address
    trait = world.trait_data("email", mine, value="customer@example.org", value_type="string")
    client.put(world.url(mine, "/traits/email"), data=trait, headers=HX)
    # Then the identity is no longer recognisably theirs: no more changes
    assert _toggle(client, world, mine).status_code == 403


def test_identity_page__editor__removes_someone_elses_link(client, auth, world):
    auth.login("editor@example.com")
    qa_user = _user(QA_EMAIL)
    html = client.get(world.url()).get_data(as_text=True)
    assert f'id="remove-link-{qa_user.id}"' in html
    client.delete(world.url(suffix=f"/link/{qa_user.id}"), headers=HX)
    assert _links(world.alice.id) == []


# ---- the setting ----------------------------------------------------------------------------


def _settings(**values: bool) -> dict[str, str]:
    return {name: "y" for name, on in values.items() if on}


def test_settings__admin__marks_production_audited_without_touching_sdks(client, auth, world):
    # Given an admin on the environment page
    auth.login("admin@example.com")
    page = client.get(f"/environments/{world.environment.id}").get_data(as_text=True)
    assert 'id="setting-production"' in page and 'id="production-badge"' not in page
    before = revision(world.environment)
    # When they tick "production" and keep the rest
    response = client.post(
        f"/environments/{world.environment.id}/settings",
        data=_settings(production=True, allow_client_traits=True),
    )
    # Then it is saved and audited, and SDK caches are left alone (nothing they serve changed)
    assert response.status_code == 302
    db.session.expire_all()
    env = db.session.get(Environment, world.environment.id)
    assert env.production is True and env.allow_client_traits is True
    event = events()[-1]
    assert (event.object_type, event.action) == ("environment", "update")
    assert (event.before, event.after) == ({"production": False}, {"production": True})
    assert revision(world.environment) == before
    page = client.get(f"/environments/{world.environment.id}").get_data(as_text=True)
    assert 'id="production-badge"' in page


def test_settings__client_traits_off__bumps_the_revision(client, auth, world):
    auth.login("admin@example.com")
    before = revision(world.environment)
    client.post(f"/environments/{world.environment.id}/settings", data={})
    db.session.expire_all()
    env = db.session.get(Environment, world.environment.id)
    assert (env.production, env.allow_client_traits, env.hide_disabled_flags) == (
        False, False, False,
    )  # fmt: skip
    assert revision(world.environment) == before + 1


def test_settings__unchanged__records_nothing(client, auth, world):
    auth.login("admin@example.com")
    count = len(events())
    client.post(f"/environments/{world.environment.id}/settings", data={"allow_client_traits": "y"})
    assert len(events()) == count


def test_settings__lists_links_and_whether_they_count(client, auth, world):
    # Given a self-made QA link (alice) and an editor-made one (bob) in a production env
    editor = _user("editor@example.com")
    link = identities_make_link(_user("qa2@example.com"), world.bob)
    link.created_by_id = editor.id
    _production(world)
    auth.login("admin@example.com")
    html = client.get(f"/environments/{world.environment.id}").get_data(as_text=True)
    assert 'id="environment-links"' in html
    rows = {row.identity.identifier: row.grants_edit for row in editing_rights.environment_links(
        db.session.get(Environment, world.environment.id))}  # fmt: skip
    assert rows == {"alice@acme.test": False, "bob@acme.test": True}
    assert "no: not theirs by the production rule" in html and "editor@example.com" in html


@pytest.mark.parametrize("role", ["viewer", "qa", "editor"])
def test_settings__not_admin__sees_the_setting_but_no_form(client, auth, world, role):
    _production(world)
    auth.login(f"{role}@example.com")
    html = client.get(f"/environments/{world.environment.id}").get_data(as_text=True)
    assert 'id="production-setting"' in html and "A production environment" in html
    assert 'id="setting-production"' not in html and 'id="environment-links"' not in html
