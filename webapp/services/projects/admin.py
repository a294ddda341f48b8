"""Create, rename and delete projects and environments, and count what a deletion loses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.exc import IntegrityError

from ...extensions import db
from ...models import (
    ROLES,
    Environment,
    Feature,
    FeatureState,
    Identity,
    IdentityOverride,
    MultivariateAllocation,
    Organisation,
    Project,
    ProjectRole,
    Segment,
    SegmentOverride,
    ServerKey,
    Trait,
    User,
)
from .. import audit
from ..errors import Forbidden, ValidationError

NAME_MAX = 200


# ------------------------------------------------------------------------------ who


def flush_named(name: str) -> None:
    """Flush a new or renamed row; a name taken meanwhile (a race) is refused, not a 500.

    :raises ValidationError: when the unique (parent, name) constraint refuses the row
    """
    try:
        db.session.flush()
    except IntegrityError as exc:
        db.session.rollback()
        raise ValidationError(f"The name “{name}” was just taken; choose another.", "name") from exc


def is_global_admin(user: User) -> bool:
    """Tell whether the user is an admin of every project (a role without a project)."""
    return any(r.project_id is None and r.role == "admin" for r in user.roles)


def admin_organisations(user: User) -> list[Organisation]:
    """Return the organisations the user may add projects to (admin of one of its projects).

    A user who is admin of every project may add to any organisation.
    """
    query = select(Organisation).order_by(Organisation.name, Organisation.id)
    if not is_global_admin(user):
        admin_of = [r.project_id for r in user.roles if r.role == "admin"]
        query = query.where(
            Organisation.id.in_(
                select(Project.organisation_id).where(Project.id.in_(admin_of or [0]))
            )
        )
    return list(db.session.scalars(query))


def check_name(name: str, what: str) -> str:
    """Return the name stripped, or refuse an empty or over-long one.

    :raises ValidationError: when the name is empty or longer than 200 characters
    """
    name = (name or "").strip()
    if not name or len(name) > NAME_MAX:
        article = "An" if what[0] in "aeiou" else "A"
        raise ValidationError(
            f"{article} {what} needs a name of 1 to {NAME_MAX} characters.", "name"
        )
    return name


def _check_project_name(organisation_id: int, name: str, project_id: int | None = None) -> str:
    name = check_name(name, "project")
    same = select(Project.id).where(
        Project.organisation_id == organisation_id,
        func.lower(Project.name) == name.lower(),
        Project.id != (project_id or 0),
    )
    if db.session.scalar(same) is not None:
        raise ValidationError(f"This organisation already has a project named “{name}”.", "name")
    return name


def check_environment_name(project_id: int, name: str, environment_id: int | None = None) -> str:
    """Return the stripped name, refusing one the project already has (any letter case).

    :raises ValidationError: empty, too long or taken
    """
    name = check_name(name, "environment")
    same = select(Environment.id).where(
        Environment.project_id == project_id,
        func.lower(Environment.name) == name.lower(),
        Environment.id != (environment_id or 0),
    )
    if db.session.scalar(same) is not None:
        raise ValidationError(f"This project already has an environment named “{name}”.", "name")
    return name


# --------------------------------------------------------------------------- projects


def create_project(organisation_id: int, name: str, actor: User) -> Project:
    """Create a project; its creator becomes its admin (unless admin of every project).

    :raises Forbidden: when the actor administers no project of the organisation
    :raises ValidationError: bad or duplicate name
    """
    if organisation_id not in {o.id for o in admin_organisations(actor)}:
        raise Forbidden("You can add projects only to an organisation you administer.")
    name = _check_project_name(organisation_id, name)
    project = Project(organisation_id=organisation_id, name=name)
    db.session.add(project)
    flush_named(name)
    if not is_global_admin(actor):
        db.session.add(ProjectRole(user_id=actor.id, project_id=project.id, role=ROLES[-1]))
    audit.record(
        actor, "create", "project", object_id=project.id, object_label=name,
        project_id=project.id, after={"name": name},
    )  # fmt: skip
    db.session.commit()
    return project


def rename_project(project: Project, name: str, actor: User | None) -> bool:
    """Rename a project; False when the name is unchanged (nothing recorded).

    :raises ValidationError: bad or duplicate name
    """
    name = _check_project_name(project.organisation_id, name, project.id)
    if name == project.name:
        return False
    before = project.name
    project.name = name
    flush_named(name)
    audit.record(
        actor, "rename", "project", object_id=project.id, object_label=name,
        project_id=project.id, before={"name": before}, after={"name": name},
    )  # fmt: skip
    db.session.commit()
    return True


@dataclass(frozen=True)
class Losses:
    """What deleting a project or an environment removes, counted."""

    environments: int
    features: int
    segments: int
    flag_states: int
    segment_overrides: int
    identities: int
    traits: int
    identity_overrides: int
    server_keys: int

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def _count(query: object) -> int:
    return int(db.session.scalar(query) or 0)  # type: ignore[call-overload]


def _environment_counts(where_env: Select[Any]) -> dict[str, int]:
    def by_env(column: Any, model: Any) -> int:
        return _count(select(func.count(column)).where(model.environment_id.in_(where_env)))

    return {
        "flag_states": by_env(FeatureState.id, FeatureState),
        "segment_overrides": by_env(SegmentOverride.id, SegmentOverride),
        "identities": by_env(Identity.id, Identity),
        "traits": by_env(Trait.id, Trait),
        "identity_overrides": by_env(IdentityOverride.id, IdentityOverride),
        "server_keys": by_env(ServerKey.id, ServerKey),
    }


def project_losses(project: Project) -> Losses:
    """Count everything deleting the project removes."""
    envs = select(Environment.id).where(Environment.project_id == project.id)
    return Losses(
        environments=_count(select(func.count()).select_from(envs.subquery())),
        features=_count(select(func.count(Feature.id)).where(Feature.project_id == project.id)),
        segments=_count(select(func.count(Segment.id)).where(Segment.project_id == project.id)),
        **_environment_counts(envs),
    )


def environment_losses(environment: Environment) -> Losses:
    """Count everything deleting the environment removes (features and segments stay)."""
    return Losses(
        environments=1, features=0, segments=0,
        **_environment_counts(select(Environment.id).where(Environment.id == environment.id)),
    )  # fmt: skip


def delete_project(project: Project, confirm_name: str, actor: User | None) -> Losses:
    """Delete a project and everything in it, once its name is typed exactly.

    :raises ValidationError: when ``confirm_name`` is not the project's name
    """
    if confirm_name != project.name:
        raise ValidationError("Type the project's name exactly to delete it.", "confirm")
    losses = project_losses(project)
    audit.record(
        actor, "delete", "project", object_id=project.id, object_label=project.name,
        project_id=project.id, before={"name": project.name, **losses.as_dict()},
    )  # fmt: skip
    _delete_environment_rows(select(Environment.id).where(Environment.project_id == project.id))
    db.session.delete(project)
    db.session.commit()
    return losses


# ----------------------------------------------------------------------- environments


def create_environment(project: Project, name: str, actor: User | None) -> Environment:
    """Create an environment with every feature off and without a value.

    Multivariate features get their options' default weights, as a new option does.

    :raises ValidationError: bad or duplicate name
    """
    name = check_environment_name(project.id, name)
    environment = Environment(project_id=project.id, name=name)
    db.session.add(environment)
    flush_named(name)
    for feature in db.session.scalars(select(Feature).where(Feature.project_id == project.id)):
        state = FeatureState(feature_id=feature.id, environment_id=environment.id, enabled=False)
        state.allocations = [
            MultivariateAllocation(option_id=o.id, percentage=o.default_allocation)
            for o in feature.options
        ]
        db.session.add(state)
    record_environment(actor, "create", environment, after={"name": name})
    db.session.commit()
    return environment


def record_environment(
    actor: User | None, action: str, environment: Environment, **states: object
) -> None:
    """Record one audit event about an environment as a whole."""
    audit.record(
        actor, action, "environment", object_id=environment.id, object_label=environment.name,
        project_id=environment.project_id, environment_id=environment.id, **states,  # type: ignore[arg-type]
    )  # fmt: skip


def rename_environment(environment: Environment, name: str, actor: User | None) -> bool:
    """Rename an environment; False when the name is unchanged (nothing recorded).

    The name is part of the SDK document (``$.environment.name``), so it bumps the revision.

    :raises ValidationError: bad or duplicate name
    """
    name = check_environment_name(environment.project_id, name, environment.id)
    if name == environment.name:
        return False
    before = environment.name
    environment.name = name
    flush_named(name)
    environment.bump_revision()
    record_environment(actor, "rename", environment, before={"name": before}, after={"name": name})
    db.session.commit()
    return True


def delete_environment(environment: Environment, confirm_name: str, actor: User | None) -> Losses:
    """Delete an environment with its flags, identities, overrides and keys.

    :raises ValidationError: when ``confirm_name`` is not the environment's name
    """
    if confirm_name != environment.name:
        raise ValidationError("Type the environment's name exactly to delete it.", "confirm")
    losses = environment_losses(environment)
    record_environment(
        actor, "delete", environment, before={"name": environment.name, **losses.as_dict()}
    )
    _delete_environment_rows(select(Environment.id).where(Environment.id == environment.id))
    db.session.delete(environment)
    db.session.commit()
    return losses


def _delete_environment_rows(env_ids: Select[Any]) -> None:
    """Delete the bulk rows in SQL first: the ORM would load every identity to cascade."""
    for model in (Trait, IdentityOverride, Identity):
        table: Any = model.__table__
        db.session.execute(table.delete().where(table.c.environment_id.in_(env_ids)))
