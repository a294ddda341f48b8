"""A project with every kind of flag source, users of every role and a QA's own identity."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import func, select

from tests.factories import (
    identities_make_link,
    identities_make_option,
    identities_make_segment_override,
    make_environment,
    make_feature,
    make_identity,
    make_project,
    make_segment,
    make_user,
)
from webapp.extensions import db
from webapp.models import AuditEvent, Environment, Feature, Identity, IdentityOverride, Trait
from webapp.services.identities.traits import trait_version


@dataclass
class World:
    environment: Environment
    other_environment: Environment
    alice: Identity  # linked to qa@example.com
    bob: Identity  # linked to nobody
    features: dict[str, Feature]

    def url(self, identity: Identity | None = None, suffix: str = "") -> str:
        identity = identity or self.alice
        return f"/environments/{identity.environment_id}/identities/{identity.id}{suffix}"

    def flag_url(self, name: str, suffix: str, identity: Identity | None = None) -> str:
        return self.url(identity, f"/flags/{self.features[name].id}{suffix}")

    def page_data(self, name: str, identity: Identity | None = None, **data: Any) -> dict[str, Any]:
        """Form data as the page sends it: ``data`` plus the override version it shows."""
        identity = identity or self.alice
        db.session.expire_all()
        row = db.session.scalar(
            select(IdentityOverride).where(
                IdentityOverride.identity_id == identity.id,
                IdentityOverride.feature_id == self.features[name].id,
            )
        )
        return {**data, "version": 0 if row is None else row.version}

    def trait_data(self, key: str, identity: Identity | None = None, **data: Any) -> dict[str, Any]:
        """Form data as the traits card sends it: ``data`` plus the trait's version token."""
        identity = identity or self.alice
        db.session.expire_all()
        trait = db.session.scalar(
            select(Trait).where(Trait.identity_id == identity.id, Trait.key == key)
        )
        return {**data, "version": trait_version(trait) if trait is not None else ""}


def build_world() -> World:
    """Create the shared identity-page world (flushes; the caller commits)."""
    project = make_project("Demo")
    environment = make_environment(project, "Production")
    other = make_project("Other")
    other_environment = make_environment(other, "Production")
    users = {
        role: make_user(f"{role}@example.com", role, project)
        for role in ("viewer", "qa", "editor", "admin")
    }
    make_user("qa2@example.com", "qa", project)
    make_user("outsider@example.com", "admin", other)
    features = {
        "dark_mode": make_feature(project, "dark_mode", enabled=False),
        "max_upload_mb": make_feature(project, "max_upload_mb", enabled=True, value=25),
        "welcome": make_feature(project, "welcome", enabled=False, value="hello"),
        "button_colour": make_feature(
            project, "button_colour", enabled=True, value="green", type="MULTIVARIATE"
        ),
    }
    identities_make_option(features["button_colour"], "blue", 30.0)
    identities_make_option(features["button_colour"], "orange", 30.0)
    pro = make_segment(project, "Pro users")  # plan = pro
    identities_make_segment_override(pro, features["max_upload_mb"], environment, True, 250)
    alice = make_identity(environment, "alice@acme.test", {"plan": "free", "age": 31})
    bob = make_identity(environment, "bob@acme.test", {"plan": "pro"})
    identities_make_link(users["qa"], alice)
    return World(environment, other_environment, alice, bob, features)


@pytest.fixture
def world(app: Any) -> World:
    built = build_world()
    db.session.commit()
    return built


HX = {"HX-Request": "true"}


def count(model: Any) -> int:
    return int(db.session.scalar(select(func.count(model.id))) or 0)


def overrides_of(identity: Identity) -> list[IdentityOverride]:
    db.session.expire_all()
    return list(
        db.session.scalars(
            select(IdentityOverride).where(IdentityOverride.identity_id == identity.id)
        )
    )


def traits_of(identity: Identity) -> dict[str, Any]:
    db.session.expire_all()
    rows = db.session.scalars(select(Trait).where(Trait.identity_id == identity.id))
    return {t.key: t.value for t in rows}


def events() -> list[AuditEvent]:
    db.session.expire_all()
    return list(db.session.scalars(select(AuditEvent).order_by(AuditEvent.id)))


def revision(environment: Environment) -> int:
    db.session.expire_all()
    return int(db.session.get(Environment, environment.id).revision)
