"""Mark environments as changed so every SDK worker recompiles them (see snapshots.py)."""

from __future__ import annotations

from sqlalchemy import select

from ..extensions import db
from ..models import Environment


def bump_environment(environment_id: int) -> None:
    """Bump one environment's revision (identity overrides, flag states, segment overrides).

    The caller commits; the bump belongs to the same transaction as the change.
    """
    environment = db.session.get(Environment, environment_id)
    if environment is not None:
        environment.bump_revision()


def bump_project(project_id: int) -> None:
    """Bump every environment of a project (features and segments are project-wide).

    The caller commits; the bump belongs to the same transaction as the change.
    """
    for environment in db.session.scalars(
        select(Environment).where(Environment.project_id == project_id)
    ):
        environment.bump_revision()
