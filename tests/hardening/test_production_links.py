"""The authorisation matrix of "This is me" in a production environment (issue 15).

In a production environment a QA user may link, and change, only an identity that is their
own: its identifier, or its string ``email`` trait where client-side keys cannot write
traits, equals their account email (ASCII blanks trimmed, ASCII case ignored, nothing else
folded). Editors and admins link any identity to anyone. Each case sends a real request
through the dashboard, as the actor, and checks the status and whether the database changed;
a refused request must change nothing. The world is the matrix's (``routes_table``) plus two
production environments of the same project.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import pytest
from flask import Flask
from sqlalchemy import select

from tests.factories import identities_make_link, make_environment, make_feature, make_identity
from tests.hardening.dbdump import describe_change, dump
from tests.hardening.routes_table import build_url, world_on
from tests.hardening.test_authorization_matrix import client_for, send
from webapp.extensions import db
from webapp.models import Project, TypedValue, User

pytestmark = pytest.mark.databases("sqlite")  # pages and rules: runs once

QA_EMAIL = "qa@example.com"  # the matrix's qa_own actor

# (world name, environment, identifier, traits); "prod" stores client traits, so email traits
# prove nothing there; "locked" does not store them, so email traits count.
IDENTITIES: list[tuple[str, str, str, dict[str, TypedValue]]] = [
    ("customer", "prod", "cust-1", {"email": "customer@example.org"}),
    ("own_id", "prod", "QA@Example.com", {}),
    ("own_id_blanks", "prod", "  qa@example.com\t", {}),
    ("email_where_client_traits", "prod", "u-100", {"email": QA_EMAIL}),
    ("legacy", "prod", "cust-2", {}),  # linked by the QA user themself before production
    ("vouched", "prod", "cust-3", {}),  # linked to the QA user by an editor
    ("own_email", "locked", "u-200", {"email": "  QA@Example.COM\n"}),
    ("cyrillic_a", "locked", "u-201", {"email": "q\u0430@example.com"}),
    ("fullwidth", "locked", "u-202", {"email": "\uff51\uff41@example.com"}),
    ("zero_width", "locked", "u-203", {"email": "qa@example.com\u200b"}),
    ("nbsp", "locked", "u-204", {"email": "\u00a0qa@example.com"}),
    ("longer", "locked", "u-205", {"email": "qa@example.com.evil.test"}),
    ("number", "locked", "u-206", {"email": 42}),
    ("boolean", "locked", "u-207", {"email": True}),
    ("capital_key", "locked", "u-208", {"Email": QA_EMAIL}),  # another trait key
]


@pytest.fixture
def world(app: Flask, database: str) -> Iterator[dict[str, str]]:
    ids = world_on()
    project = db.session.scalar(select(Project).where(Project.name == "Demo"))
    assert project is not None
    envs = {
        "prod": make_environment(project, "Production", production=True),
        "locked": make_environment(
            project, "Production EU", production=True, allow_client_traits=False
        ),
    }
    launch = make_feature(project, "launch")
    made = {
        name: make_identity(envs[env], identifier, traits=traits)
        for name, env, identifier, traits in IDENTITIES
    }
    qa_user = db.session.scalar(select(User).where(User.email == QA_EMAIL))
    editor = db.session.scalar(select(User).where(User.email == "editor@example.com"))
    assert qa_user is not None and editor is not None
    identities_make_link(qa_user, made["legacy"]).created_by_id = qa_user.id
    identities_make_link(qa_user, made["vouched"]).created_by_id = editor.id
    db.session.commit()
    ids |= {name: str(env.id) for name, env in envs.items()}
    ids |= {name: str(identity.id) for name, identity in made.items()}
    ids["launch"] = str(launch.id)
    yield ids


@dataclass(frozen=True)
class Case:
    id: str
    actor: str
    endpoint: str
    method: str
    identity: str  # world name of the identity in the URL
    status: int  # 302 for an allowed page request
    environment: str = "prod"
    data: Mapping[str, str] = field(default_factory=dict)

    @property
    def changes(self) -> bool:
        return self.status < 400


def link(name: str, proof: str, environment: str = "prod") -> dict[str, str]:
    return {"identity": name, "environment": environment, "data": {"proof": proof}}


TOGGLE = {"expires": "never", "version": "0"}
SET_EMAIL = {"key": "email", "value": QA_EMAIL, "value_type": "string"}
LINK, TOGGLE_OVERRIDE = "identities.link", "identities.toggle_override"
ADD_TRAIT = "identities.add_trait"

CASES = [
    # A QA user links their own identity (by identifier; by email trait where it counts).
    Case("qa-links-identifier-equal-to-email", "qa_own", LINK, "POST", "own_id", 302,
         data={"proof": "QA@Example.com"}),
    Case("qa-links-identifier-with-blanks", "qa_own", LINK, "POST", "own_id_blanks", 302,
         data={"proof": "  qa@example.com\t"}),
    Case("qa-links-email-trait", "qa_own", LINK, "POST", "own_email", 302, "locked",
         data={"proof": "u-200"}),
    # ...and nobody else's, however the proof is typed.
    Case("qa-links-customer", "qa_own", LINK, "POST", "customer", 403, data={"proof": "cust-1"}),
    Case("qa-links-email-trait-client-key-can-write", "qa_own", LINK, "POST",
         "email_where_client_traits", 403, data={"proof": "u-100"}),
    *[
        Case(f"qa-links-{name}-email", "qa_own", LINK, "POST", name, 403, "locked",
             data={"proof": identifier})
        for name, env, identifier, _ in IDENTITIES
        if env == "locked" and name != "own_email"
    ],
    # Editors and admins link any identity to anyone, production or not.
    Case("editor-links-customer-to-qa", "editor", LINK, "POST", "customer", 302,
         data={"email": QA_EMAIL}),
    Case("admin-links-customer-to-self", "admin", LINK, "POST", "customer", 302),
    Case("qa-links-customer-to-someone-else", "qa_own", LINK, "POST", "customer", 403,
         data={"email": "qa2@example.com"}),
    # Another environment's identity through the production URL, and the other way round.
    Case("qa-links-development-identity-via-production-url", "qa_own", LINK, "POST", "erin",
         404, data={"proof": "erin"}),
    Case("qa-links-production-identity-via-development-url", "qa_own", LINK, "POST", "own_id",
         404, "env", data={"proof": "QA@Example.com"}),
    # Changing: a link the QA user made before production grants nothing; an editor's does.
    Case("qa-toggles-legacy-link", "qa_own", TOGGLE_OVERRIDE, "POST", "legacy", 403,
         data=TOGGLE),
    Case("qa-sets-trait-on-legacy-link", "qa_own", ADD_TRAIT, "POST", "legacy", 403,
         data=SET_EMAIL),
    Case("qa-toggles-editor-made-link", "qa_own", TOGGLE_OVERRIDE, "POST", "vouched", 200,
         data=TOGGLE),
    # The email trait cannot be planted first: no trait changes on an unlinked identity.
    Case("qa-sets-email-trait-on-customer", "qa_own", ADD_TRAIT, "POST", "customer", 403,
         data=SET_EMAIL),
    Case("qa-sets-email-trait-on-unlinked-locked", "qa_own", ADD_TRAIT, "POST", "cyrillic_a",
         403, "locked", data=SET_EMAIL),
    Case("editor-toggles-customer", "editor", TOGGLE_OVERRIDE, "POST", "customer", 200,
         data=TOGGLE),
    Case("viewer-links-own-identifier", "viewer", LINK, "POST", "own_id", 403,
         data={"proof": "QA@Example.com"}),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_production__each_rule__allows_or_refuses_and_changes_only_when_allowed(
    app: Flask, world: dict[str, str], case: Case
) -> None:
    # Given an actor and a request against an identity of a production environment
    client = client_for(app, case.actor)
    args = {"environment_id": case.environment, "identity_id": case.identity,
            "feature_id": "launch"}  # fmt: skip
    url = build_url(app, case.endpoint, case.method, world, args)
    before = dump()

    # When it is sent as a page (htmx) request
    response = send(client, url, case.method, data=dict(case.data), headers={"HX-Request": "true"})
    after = dump()

    # Then it gets its status, and the database changed only if it was allowed
    text = " ".join(response.get_data(as_text=True).split())[:300]
    status = 302 if response.headers.get("HX-Redirect") else response.status_code
    assert status == case.status, f"{case.method} {url}: {response.status_code} {text}"
    if case.changes:
        assert after != before, "allowed, yet nothing changed"
    else:
        assert after == before, describe_change(before, after)


def test_cases__every_identity_of_the_world__is_tried() -> None:
    tried = {case.identity for case in CASES}
    assert {name for name, *_ in IDENTITIES} <= tried


def test_refusal__names_the_rule(app: Flask, world: dict[str, str]) -> None:
    # Given a QA user refused a customer in production
    client = client_for(app, "qa_own")
    url = f"/environments/{world['prod']}/identities/{world['customer']}/link"
    # When they try anyway
    response = send(client, url, "POST", data={"proof": "cust-1"}, headers={"HX-Request": "true"})
    # Then the message says which identities they may link
    assert response.status_code == 403
    message = response.get_data(as_text=True)
    assert "Production environment" in message and QA_EMAIL in message
