"""Fixtures for the Users page tests: one environment, users of every role, a few identities."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy import func, select

from tests.factories import make_environment, make_feature, make_identity, make_project, make_user
from webapp.extensions import db
from webapp.models import (
    AuditEvent,
    Environment,
    Feature,
    Identity,
    IdentityOverride,
    Project,
    Trait,
)


@dataclass
class UsersWorld:
    project: Project
    environment: Environment
    feature: Feature

    @property
    def url(self) -> str:
        return f"/environments/{self.environment.id}/users"


@pytest.fixture
def world(app) -> UsersWorld:
    project = make_project("Demo")
    environment = make_environment(project, "Production")
    feature = make_feature(project, "new_checkout", enabled=False)
    for role in ("viewer", "qa", "editor", "admin"):
        make_user(f"{role}@example.com", role, project)
    make_identity(environment, "alice@acme.com", {"plan": "pro", "age": 34, "country": "DE"})
    make_identity(environment, "bob@acme.com", {"plan": "free", "age": 25, "country": "FR"})
    carol = make_identity(environment, "carol@other.org", {"plan": "pro", "age": 41, "beta": True})
    make_identity(environment, "dave", {"code": "007"})
    override = IdentityOverride(
        identity_id=carol.id, feature_id=feature.id, environment_id=environment.id, enabled=True
    )
    override.value = "on"
    db.session.add(override)
    db.session.commit()
    return UsersWorld(project, environment, feature)


def table_counts() -> tuple[int, int, int, int]:
    """Identities, traits, overrides and audit events in the database."""
    return tuple(  # type: ignore[return-value]
        db.session.scalar(select(func.count()).select_from(model))
        for model in (Identity, Trait, IdentityOverride, AuditEvent)
    )


HX = {"HX-Request": "true"}
