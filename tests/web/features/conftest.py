"""A project with two environments, one user per role and a few features."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy import func, select

from tests.factories import (
    features_make_identity_override,
    features_make_segment_override,
    make_environment,
    make_feature,
    make_identity,
    make_project,
    make_segment,
    make_user,
)
from webapp.extensions import db
from webapp.models import AuditEvent, Environment, Feature, Project

HX = {"HX-Request": "true"}


@dataclass
class World:
    project: Project
    env: Environment
    prod: Environment
    dark: Feature
    limit: Feature

    def url(self, suffix: str = "", env: Environment | None = None) -> str:
        return f"/environments/{(env or self.env).id}/features{suffix}"


@pytest.fixture
def world(app) -> World:
    project = make_project("Demo")
    env = make_environment(project, "Development")
    prod = make_environment(project, "Production")
    for role in ("viewer", "qa", "editor", "admin"):
        make_user(f"{role}@example.com", role, project)
    other = make_project("Other")
    make_environment(other, "Elsewhere")
    make_user("outsider@example.com", "admin", other)
    dark = make_feature(project, "dark_mode", enabled=False, value=None)
    limit = make_feature(project, "max_upload", enabled=True, value=25)
    pro = make_segment(project, "Pro users")
    features_make_segment_override(pro, limit, env, value=250, priority=0)
    alice = make_identity(env, "alice")
    features_make_identity_override(alice, limit, value=1000)
    db.session.commit()
    return World(project, env, prod, dark, limit)


@pytest.fixture
def editor(auth, world):
    auth.login("editor@example.com")
    return world


def audit_events(object_type: str | None = None) -> list[AuditEvent]:
    stmt = select(AuditEvent).order_by(AuditEvent.id)
    if object_type:
        stmt = stmt.where(AuditEvent.object_type == object_type)
    return list(db.session.scalars(stmt))


def count(model) -> int:
    return int(db.session.scalar(select(func.count()).select_from(model)))


def revisions(*environments: Environment) -> list[int]:
    db.session.expire_all()
    return [db.session.get(Environment, e.id).revision for e in environments]


def assert_partial(response, root_id: str) -> str:
    """Check an htmx partial: root id present, no page chrome, Vary set."""
    body = response.get_data(as_text=True)
    assert f'id="{root_id}"' in body
    assert "<html" not in body
    assert "HX-Request" in response.headers.get("Vary", "")
    return body
