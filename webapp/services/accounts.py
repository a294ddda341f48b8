"""Dashboard accounts: creation, authentication and roles per project."""

from __future__ import annotations

from functools import lru_cache

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash

from ..clock import utcnow
from ..extensions import db
from ..models import ROLES, Project, ProjectRole, User
from .errors import ValidationError
from .passwords import check_password, hash_password


def normalise_email(email: str) -> str:
    """Return the canonical (lower-cased) form of a well-formed email address.

    :raises ValidationError: when the address is malformed.
    """
    try:
        checked = validate_email(email.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValidationError(f"Invalid email address {email!r}: {exc}", field="email") from exc
    return checked.normalized.lower()


def create_user(email: str, password: str, role: str, project_name: str | None = None) -> User:
    """Create a dashboard user with a role on one project, or on every project.

    :param role: one of ``viewer``, ``qa``, ``editor``, ``admin``.
    :param project_name: the project the role applies to; None means all projects.
    :return: the committed user.
    :raises ValidationError: malformed email, duplicate email, a password the rule refuses
        (services/passwords.py), unknown role or unknown project.
    """
    address = normalise_email(email)
    if role not in ROLES:
        raise ValidationError(f"Unknown role {role!r}; choose one of {', '.join(ROLES)}", "role")
    check_password(password, address)
    if db.session.scalar(select(User.id).where(User.email == address)) is not None:
        raise ValidationError(f"A user with email {address} already exists", "email")
    project_id = None
    if project_name is not None:
        project = db.session.scalar(select(Project).where(Project.name == project_name))
        if project is None:
            raise ValidationError(f"No project named {project_name!r}", "project")
        project_id = project.id
    user = User(email=address, password_hash=hash_password(password))
    user.roles.append(ProjectRole(project_id=project_id, role=role))
    db.session.add(user)
    db.session.commit()
    return user


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return generate_password_hash("not-a-real-password")


def authenticate(email: str, password: str) -> User | None:
    """Return the active user with these credentials, or None.

    Unknown emails still pay for one password check, so timing does not reveal which
    addresses have accounts.
    """
    address = email.strip().lower()
    user: User | None = db.session.scalar(select(User).where(User.email == address))
    if user is None:
        check_password_hash(_dummy_hash(), password)
        return None
    if not check_password_hash(user.password_hash, password) or not user.is_active:
        return None
    user.last_login_at = utcnow()
    db.session.commit()
    return user


def role_for(user: User, project_id: int) -> str | None:
    """Return the user's effective role on a project (the strongest that applies), or None."""
    found = [r.role for r in user.roles if r.project_id in (None, project_id)]
    if not found:
        return None
    return max(found, key=ROLES.index)


def has_role(user: User, project_id: int, minimum: str) -> bool:
    """Tell whether the user's role on the project is at least ``minimum``."""
    role = role_for(user, project_id)
    return role is not None and ROLES.index(role) >= ROLES.index(minimum)


def accessible_projects(user: User) -> list[Project]:
    """Return the projects the user holds any role on, in a stable order."""
    query = select(Project).order_by(Project.name, Project.id)
    if not any(r.project_id is None for r in user.roles):
        ids = [r.project_id for r in user.roles]
        query = query.where(Project.id.in_(ids))
    return list(db.session.scalars(query))
