"""Environments: overview figures, settings and server-side key management."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import timedelta

from sqlalchemy import func, select

from ..clock import utcnow
from ..extensions import db
from ..models import (
    Environment,
    Feature,
    Identity,
    IdentityOverride,
    Project,
    Segment,
    ServerKey,
    User,
)
from . import audit
from .errors import NotFound, ValidationError
from .sdk.snapshots import app_cache


@dataclass(frozen=True)
class EnvironmentSummary:
    environment: Environment
    features: int
    segments: int
    identities: int
    identity_overrides: int


def summarise(environment: Environment) -> EnvironmentSummary:
    """Count what an environment holds, for the dashboard home and overview."""
    project_id = environment.project_id

    def count(query: object) -> int:
        return int(db.session.scalar(query) or 0)  # type: ignore[call-overload]

    return EnvironmentSummary(
        environment=environment,
        features=count(select(func.count(Feature.id)).where(Feature.project_id == project_id)),
        segments=count(select(func.count(Segment.id)).where(Segment.project_id == project_id)),
        identities=count(
            select(func.count(Identity.id)).where(Identity.environment_id == environment.id)
        ),
        identity_overrides=count(
            select(func.count(IdentityOverride.id)).where(
                IdentityOverride.environment_id == environment.id
            )
        ),
    )


def summarise_projects(projects: list[Project]) -> list[tuple[Project, list[EnvironmentSummary]]]:
    """Summarise every environment of the given projects."""
    return [(p, [summarise(env) for env in p.environments]) for p in projects]


@dataclass(frozen=True)
class EnvironmentSettings:
    """The settings an admin edits on the environment page."""

    production: bool  # real customers: QA users may link only their own identities (qa.py)
    allow_client_traits: bool  # store traits sent with the client-side key
    hide_disabled_flags: bool  # leave disabled flags out of SDK responses


# These change what SDKs are served, so changing them bumps the environment's revision.
_SDK_SETTINGS = ("allow_client_traits", "hide_disabled_flags")


def settings_of(environment: Environment) -> EnvironmentSettings:
    """Return the environment's current settings."""
    return EnvironmentSettings(
        production=environment.production,
        allow_client_traits=environment.allow_client_traits,
        hide_disabled_flags=environment.hide_disabled_flags,
    )


def update_settings(
    environment: Environment, settings: EnvironmentSettings, actor: User | None
) -> bool:
    """Save the environment's settings, record one audit event, and commit.

    :param settings: the settings as they should be from now on
    :return: False when nothing changed (nothing is recorded then)
    """
    before = asdict(settings_of(environment))
    after = asdict(settings)
    if before == after:
        return False
    for name, value in after.items():
        setattr(environment, name, value)
    if any(before[name] != after[name] for name in _SDK_SETTINGS):
        environment.bump_revision()
    changed = [name for name in after if before[name] != after[name]]
    audit.record(
        actor,
        "update",
        "environment",
        object_id=environment.id,
        object_label=environment.name,
        project_id=environment.project_id,
        environment_id=environment.id,
        before={name: before[name] for name in changed},
        after={name: after[name] for name in changed},
    )
    db.session.commit()
    return True


def create_server_key(environment: Environment, name: str, actor: User | None) -> ServerKey:
    """Create a named server-side key for an environment.

    :raises ValidationError: when the name is empty or longer than 200 characters.
    """
    name = name.strip()
    if not name or len(name) > 200:
        raise ValidationError("A key needs a name of 1 to 200 characters", "name")
    key = ServerKey(environment=environment, name=name)
    db.session.add(key)
    db.session.flush()
    audit.record(
        actor,
        "create",
        "server_key",
        object_id=key.id,
        object_label=name,
        project_id=environment.project_id,
        environment_id=environment.id,
        after={"name": name, "key_prefix": key.key[:8]},
    )
    db.session.commit()
    return key


SHOW_NEW_KEY_FOR = timedelta(minutes=10)


def just_created_key(environment: Environment, key_id: object) -> ServerKey | None:
    """Return the environment's active key ``key_id`` if it was created moments ago.

    The page shows such a key in full once, right after its creation; any other id (stale,
    forged, another environment's) shows nothing.
    """
    if not isinstance(key_id, int) or isinstance(key_id, bool):
        return None
    key = db.session.get(ServerKey, key_id)
    if key is None or key.environment_id != environment.id or not key.is_active:
        return None
    return key if utcnow() - key.created_at <= SHOW_NEW_KEY_FOR else None


def revoke_server_key(environment: Environment, key_id: int, actor: User | None) -> ServerKey:
    """Revoke one of an environment's server-side keys; SDKs using it get 403 from now on.

    :raises NotFound: when the key does not belong to the environment.
    """
    key = db.session.get(ServerKey, key_id)
    if key is None or key.environment_id != environment.id:
        raise NotFound("No such server key in this environment")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        audit.record(
            actor,
            "revoke",
            "server_key",
            object_id=key.id,
            object_label=key.name,
            project_id=environment.project_id,
            environment_id=environment.id,
            before={"revoked": False},
            after={"revoked": True},
        )
        environment.bump_revision()
        db.session.commit()
    # This worker stops honouring it at once; other workers on their next check (0.5 s).
    app_cache().forget_key(key.key)
    return key
