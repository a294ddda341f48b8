"""Plain factory functions: keyword overrides, flush (never commit)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from werkzeug.security import generate_password_hash

from webapp.extensions import db
from webapp.models import (
    Environment,
    Feature,
    FeatureState,
    Identity,
    Organisation,
    Project,
    ProjectRole,
    Segment,
    Trait,
    TypedValue,
    User,
)

# A cheap hash keeps tests fast; production uses werkzeug's default (scrypt).
FAST_HASH = "pbkdf2:sha256:1000"
DEFAULT_PASSWORD = "password123"


def make_project(name: str = "Demo", organisation: str = "Acme") -> Project:
    org = db.session.query(Organisation).filter_by(name=organisation).one_or_none()
    if org is None:
        org = Organisation(name=organisation)
        db.session.add(org)
    project = Project(name=name, organisation=org)
    db.session.add(project)
    db.session.flush()
    return project


def make_environment(
    project: Project | None = None, name: str = "Development", **kwargs: Any
) -> Environment:
    project = project or make_project()
    environment = Environment(project=project, name=name, **kwargs)
    db.session.add(environment)
    db.session.flush()
    return environment


def make_user(
    email: str = "admin@example.com",
    role: str | None = "admin",
    project: Project | None = None,
    password: str = DEFAULT_PASSWORD,
    all_projects: bool = False,
) -> User:
    """Create a user with ``role`` on ``project`` (or on every project)."""
    user = User(email=email, password_hash=generate_password_hash(password, method=FAST_HASH))
    if role is not None:
        project_id = None if all_projects or project is None else project.id
        user.roles.append(ProjectRole(project_id=project_id, role=role))
    db.session.add(user)
    db.session.flush()
    return user


def make_feature(
    project: Project,
    name: str = "new_dashboard",
    enabled: bool = False,
    value: TypedValue = None,
    **kwargs: Any,
) -> Feature:
    """Create a feature with a default state in every environment of the project."""
    feature = Feature(project=project, name=name, **kwargs)
    db.session.add(feature)
    for environment in project.environments:
        state = FeatureState(feature=feature, environment=environment, enabled=enabled)
        state.value = value
        db.session.add(state)
    db.session.flush()
    return feature


def make_identity(
    environment: Environment, identifier: str = "alice", traits: dict[str, TypedValue] | None = None
) -> Identity:
    return make_identities(environment, [(identifier, traits or {})])[0]


def make_identities(
    environment: Environment, people: Sequence[tuple[str, dict[str, TypedValue]]]
) -> list[Identity]:
    """``make_identity`` for many (identifier, traits) pairs: the same rows, in the same
    order (the identities, then their traits), in two flushes instead of two per identity."""
    identities = [Identity(environment_id=environment.id, identifier=ident) for ident, _ in people]
    db.session.add_all(identities)
    db.session.flush()
    for identity, (_, traits) in zip(identities, people, strict=True):
        for key, value in traits.items():
            trait = Trait(identity_id=identity.id, environment_id=environment.id, key=key)
            trait.value = value
            db.session.add(trait)
    db.session.flush()
    return identities


def make_segment(
    project: Project,
    name: str = "Pro users",
    rules: list[dict[str, Any]] | None = None,
    **kwargs: Any,
) -> Segment:
    rules = (
        rules
        if rules is not None
        else [
            {
                "type": "ALL",
                "rules": [
                    {
                        "type": "ANY",
                        "rules": [],
                        "conditions": [{"property_": "plan", "operator": "EQUAL", "value": "pro"}],
                    }
                ],
                "conditions": [],
            }
        ]
    )
    segment = Segment(project=project, name=name, rules=rules, **kwargs)
    db.session.add(segment)
    db.session.flush()
    return segment


# ---- Identity page (identities area) ------------------------------------------------------


def identities_make_override(
    identity: Identity,
    feature: Feature,
    enabled: bool = True,
    value: TypedValue = None,
    **kwargs: Any,
) -> Any:
    """Create an identity override (kwargs: expires_at, option_id, created_by_id)."""
    from webapp.models import IdentityOverride

    override = IdentityOverride(
        identity_id=identity.id,
        feature_id=feature.id,
        environment_id=identity.environment_id,
        enabled=enabled,
        **kwargs,
    )
    override.value = value
    db.session.add(override)
    db.session.flush()
    return override


def identities_make_segment_override(
    segment: Segment,
    feature: Feature,
    environment: Environment,
    enabled: bool = True,
    value: TypedValue = None,
    priority: int | None = 1,
) -> Any:
    """Create a segment override of a feature in one environment."""
    from webapp.models import SegmentOverride

    override = SegmentOverride(
        segment=segment, feature=feature, environment=environment, enabled=enabled,
        priority=priority,
    )
    override.value = value
    db.session.add(override)
    db.session.flush()
    return override


def identities_make_option(feature: Feature, value: TypedValue, percentage: float) -> Any:
    """Add a multivariate option with this percentage in every environment's default state."""
    from webapp.models import MultivariateAllocation, MultivariateOption

    option = MultivariateOption(feature=feature, default_allocation=percentage)
    option.value = value
    db.session.add(option)
    for state in feature.states:
        state.allocations.append(MultivariateAllocation(option=option, percentage=percentage))
    db.session.flush()
    return option


def identities_make_link(user: User, identity: Identity) -> Any:
    """Link an identity to a dashboard user ("This is me")."""
    from webapp.models import IdentityLink

    link = IdentityLink(user_id=user.id, identity_id=identity.id)
    db.session.add(link)
    db.session.flush()
    return link


def features_make_segment_override(
    segment: Segment,
    feature: Feature,
    environment: Environment,
    value: TypedValue = None,
    priority: int | None = None,
    enabled: bool = True,
) -> Any:
    """Create a segment override (Features page tests: no priority unless given)."""
    return identities_make_segment_override(
        segment, feature, environment, enabled=enabled, value=value, priority=priority
    )


def features_make_identity_override(
    identity: Identity, feature: Feature, value: TypedValue = None, enabled: bool = True
) -> Any:
    """Create an identity override (Features page tests)."""
    return identities_make_override(identity, feature, enabled=enabled, value=value)


# ---- Experiments ----------------------------------------------------------------------------


def experiments_make_world(segment_rules: bool = False) -> dict[str, Any]:
    """A project with a multivariate ``checkout`` (red 30 %, green 30 %, control 40 %) and a
    running experiment on it in ``Development`` (goal ``purchase``); optionally enrolling
    only the segment ``Pro users`` (plan = pro)."""
    from webapp.clock import utcnow
    from webapp.services.experiments import lifecycle

    project = make_project("Shop")
    environment = make_environment(project, "Development")
    editor = make_user("editor@example.com", "editor", project)
    checkout = make_feature(project, "checkout", enabled=True, value="blue", type="MULTIVARIATE")
    red = identities_make_option(checkout, "red", 30.0)
    green = identities_make_option(checkout, "green", 30.0)
    segment = make_segment(project, "Pro users")
    db.session.commit()
    experiment = lifecycle.start_experiment(
        environment, checkout, "Button colour", "purchase",
        segment.id if segment_rules else None, editor, utcnow(),
    )  # fmt: skip
    return {
        "project": project, "environment": environment, "editor": editor,
        "feature": checkout, "red": red, "green": green, "segment": segment,
        "experiment": experiment,
    }  # fmt: skip
