"""Fixtures for the Segments page tests: a project, users per role, identities and a segment."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from tests.factories import (
    make_environment,
    make_feature,
    make_identity,
    make_project,
    make_segment,
    make_user,
)
from webapp.extensions import db


@pytest.fixture
def world(app):
    project = make_project("Demo")
    env = make_environment(project, name="Production")
    for role in ("viewer", "qa", "editor", "admin"):
        make_user(f"{role}@example.com", role, project)
    feature = make_feature(project, "banner", enabled=False, value="off")
    alice = make_identity(env, "alice", {"plan": "pro", "country": "DE"})
    bob = make_identity(env, "bob", {"plan": "free", "country": "FR"})
    carol = make_identity(env, "carol", {"plan": "pro", "country": "US"})
    segment = make_segment(project, "Pro users")  # plan = pro
    db.session.commit()
    return SimpleNamespace(project=project, env=env, feature=feature, segment=segment,
                           alice=alice, bob=bob, carol=carol)  # fmt: skip


def builder_data(name="Pro in EU", version=None, groups=None, match="ALL", **extra):
    """Form fields of the rule builder (FieldList naming)."""
    groups = groups if groups is not None else [
        ("ANY", [("plan", "EQUAL", "pro")]),
        ("ANY", [("country", "IN", "DE,FR")]),
    ]  # fmt: skip
    data = {"name": name, "description": "", "match": match}
    if version is not None:
        data["version"] = str(version)
    for gi, (kind, conditions) in enumerate(groups):
        data[f"groups-{gi}-type"] = kind
        for ci, (prop, operator, value) in enumerate(conditions):
            data[f"groups-{gi}-conditions-{ci}-property_"] = prop
            data[f"groups-{gi}-conditions-{ci}-operator"] = operator
            data[f"groups-{gi}-conditions-{ci}-value"] = value
    data.update(extra)
    return data


HX = {"HX-Request": "true"}
