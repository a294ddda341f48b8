"""Users page default trait columns: a person's choice, else the admin's, else the commonest keys.

About database behaviour (the commonest-keys query): runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.factories import make_environment, make_identity
from tests.web.users.conftest import HX
from webapp.clock import utcnow
from webapp.extensions import db
from webapp.models import AuditEvent, Identity, TraitColumnDefault, User
from webapp.services.identities import trait_columns

pytestmark = pytest.mark.databases("sqlite", "postgres")  # database behaviour: key counts


def _headers(body: str) -> list[str]:
    return re.findall(r'<th class="trait-col">([^<]*)</th>', body)


def _add_identities(world, count: int, traits: dict, prefix: str) -> None:
    for index in range(count):
        make_identity(world.environment, f"{prefix}{index}", traits)
    db.session.commit()


def test_common_keys__a_key_that_sorts_first__does_not_take_over(app, world):
    # Given most identities with plan and country, and one SDK sending "aaa" to one identity
    _add_identities(world, 3, {"plan": "pro", "country": "DE"}, "many")
    make_identity(world.environment, "odd", {"aaa": 1})
    db.session.commit()
    # Then the defaults are the commonest keys, commonest first, ties by name
    assert trait_columns.common_keys(world.environment.id) == ["plan", "country", "age"]


def test_common_keys__ties__broken_by_name(app, world):
    # Given an environment where two keys are on exactly the same identities
    env = make_environment(world.project, "Staging")
    for index in range(3):
        make_identity(env, f"t{index}", {"zeta": 1, "alpha": 2, "mid": 3})
    make_identity(env, "t9", {"zeta": 1})
    db.session.commit()
    assert trait_columns.common_keys(env.id) == ["zeta", "alpha", "mid"]
    assert trait_columns.common_keys(env.id, limit=2) == ["zeta", "alpha"]


def test_common_keys__bounded_sample__counts_the_newest_identities(app, world, monkeypatch):
    # Given old identities with "legacy" and newer ones with "plan"
    old = utcnow() - timedelta(days=30)
    for index in range(5):
        identity = make_identity(world.environment, f"old{index}", {"legacy": True})
        identity.created_at = old
    _add_identities(world, 2, {"plan": "pro"}, "new")
    monkeypatch.setattr(trait_columns, "SAMPLE_IDENTITIES", 2)
    # Then only the sampled (newest) identities count
    assert trait_columns.common_keys(world.environment.id, limit=1) == ["plan"]


def test_common_keys__empty_environment__no_columns(app, world):
    env = make_environment(world.project, "Empty")
    db.session.commit()
    assert trait_columns.common_keys(env.id) == []
    assert trait_columns.default_columns(env.id) == []


def test_users_page__no_choice__shows_the_commonest_keys(client, auth, world):
    # Given an identity sending a key that sorts before every other
    make_identity(world.environment, "odd", {"aaa": 1})
    db.session.commit()
    auth.login("viewer@example.com")
    body = client.get(world.url).get_data(as_text=True)
    # Then the columns are the keys most identities have (plan 3, age 3, country 2)
    assert _headers(body) == ["age", "plan", "country"]
    assert "the three trait keys most identities have" in body


def test_save_default__admin__everyone_without_a_choice_sees_it_and_it_is_audited(
    client, auth, world
):
    # Given an admin saving "country, beta" as everyone's default
    auth.login("admin@example.com")
    response = client.post(
        f"{world.url}/columns/default", data={"columns": ["country", "beta"]}, headers=HX
    )
    assert response.status_code == 200
    assert "show-message" in response.headers["HX-Trigger"]
    row = db.session.get(TraitColumnDefault, world.environment.id)
    assert row is not None and row.keys == ["country", "beta"]
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.object_type == "trait_columns"))
    assert event is not None and (event.before, event.after) == (None, ["country", "beta"])
    auth.logout()
    # Then a viewer who never chose sees those columns, and the page says whose they are
    auth.login("viewer@example.com")
    body = client.get(world.url).get_data(as_text=True)
    assert _headers(body) == ["country", "beta"]
    assert "(chosen by an admin)" in body
    # And a viewer's own choice still wins
    client.post(f"{world.url}/columns", data={"columns": ["plan"]}, headers=HX)
    assert _headers(client.get(world.url).get_data(as_text=True)) == ["plan"]


def test_save_default__nothing_ticked__back_to_the_commonest_keys(client, auth, world):
    auth.login("admin@example.com")
    client.post(f"{world.url}/columns/default", data={"columns": ["beta"]}, headers=HX)
    client.post(f"{world.url}/columns/default", data={}, headers=HX)
    assert trait_columns.saved_default(world.environment.id) is None
    events = list(db.session.scalars(
        select(AuditEvent).where(AuditEvent.object_type == "trait_columns").order_by(AuditEvent.id)
    ))  # fmt: skip
    assert [(e.before, e.after) for e in events] == [(None, ["beta"]), (["beta"], None)]
    # Saving the same again changes nothing and records nothing
    client.post(f"{world.url}/columns/default", data={}, headers=HX)
    assert db.session.query(AuditEvent).filter_by(object_type="trait_columns").count() == 2


@pytest.mark.parametrize("columns", [[f"k{i}" for i in range(9)], ["x" * 201]])
def test_save_default__invalid__422_and_nothing_saved(client, auth, world, columns):
    auth.login("admin@example.com")
    response = client.post(f"{world.url}/columns/default", data={"columns": columns}, headers=HX)
    assert response.status_code == 422
    assert db.session.get(TraitColumnDefault, world.environment.id) is None


@pytest.mark.parametrize(("email", "sees"), [
    ("admin@example.com", True), ("editor@example.com", False), ("viewer@example.com", False),
])  # fmt: skip
def test_users_page__save_default_button__admins_only(client, auth, world, email, sees):
    auth.login(email)
    body = client.get(world.url).get_data(as_text=True)
    assert ('id="save-default-columns"' in body) is sees
    assert "Save these columns as the default for everyone" in body or not sees


def test_default__deleted_environment__setting_goes_with_it(app, world):
    trait_columns.save_default(
        db.session.scalar(select(User).where(User.email == "admin@example.com")),
        world.project.id, world.environment.id, ["plan"],
    )  # fmt: skip
    db.session.execute(db.delete(Identity))
    db.session.delete(world.environment)
    db.session.commit()
    assert db.session.scalars(select(TraitColumnDefault)).all() == []
