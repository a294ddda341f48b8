"""People: the organisation's accounts, invitations, roles, disabling and password links.

Who manages people: an **organisation admin**, i.e. an account holding ``admin`` on every
project (a ``ProjectRole`` with ``project_id`` NULL). An admin of one project runs that
project (keys, settings) but cannot invite, re-role or disable anyone: a project admin who
could grant roles could also make themselves, or a friend, admin elsewhere. The "last admin"
rule counts the same people: enabled, accepted accounts that are organisation admins. No
change (role change, disabling, also of oneself) may leave none, so the organisation always
keeps someone who can manage it.

Links (invitations and password resets) carry a random secret; only its SHA-256 is stored,
each is used once, expires, and issuing a new one for the same account and purpose voids the
earlier ones. An invitation creates the account at once (pending, without a usable password,
with the granted roles), so the people page lists it and its roles can be changed before it
is accepted.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from werkzeug.security import check_password_hash

from ..extensions import db
from ..models import ROLES, AccountToken, AuditEvent, Project, ProjectRole, User
from . import audit
from .accounts import normalise_email
from .errors import Conflict, NotFound, ValidationError
from .passwords import check_password, hash_password

INVITATION_LIFETIME = timedelta(days=7)
RESET_LIFETIME = timedelta(days=1)
LIFETIMES = {"invitation": INVITATION_LIFETIME, "password_reset": RESET_LIFETIME}
# A grant: project id (None: every project) -> role.
Grants = Mapping[int | None, str]
LAST_ADMIN = (
    "{email} is the last organisation admin; make someone else an organisation admin first."
)
# What the audit log says of a new password (never the password, nor its hash).
NEW_PASSWORD = "new; other sessions logged out"  # noqa: S105
# Not a hash werkzeug can match: nobody logs in with it.
NO_PASSWORD = "!"  # noqa: S105
LINK_INVALID = "This link is not valid: it was already used, replaced by a newer one, or expired."


@dataclass(frozen=True)
class Person:
    """One row of the people page."""

    user: User
    status: str  # "active", "invited" or "disabled"
    everywhere: str | None  # the role on every project, if any
    projects: list[tuple[Project, str]]  # the roles on single projects, by project name


@dataclass(frozen=True)
class IssuedLink:
    """A one-time link just issued: the secret is shown once and never stored."""

    user: User
    purpose: str
    token: str
    expires_at: datetime


def is_org_admin(user: User) -> bool:
    """Tell whether the account may manage people (admin on every project)."""
    return any(r.project_id is None and r.role == "admin" for r in user.roles)


def status_of(user: User) -> str:
    """Return "invited", "disabled" or "active"."""
    if user.invitation_pending:
        return "invited"
    return "active" if user.active else "disabled"


def list_people() -> list[Person]:
    """Return every account with its roles, by email."""
    users = db.session.scalars(select(User).order_by(User.email)).all()
    names = {p.id: p for p in db.session.scalars(select(Project))}
    people = []
    for user in users:
        everywhere = next((r.role for r in user.roles if r.project_id is None), None)
        single = [(names[r.project_id], r.role) for r in user.roles if r.project_id in names]
        single.sort(key=lambda pair: (pair[0].name, pair[0].id))
        people.append(Person(user, status_of(user), everywhere, single))
    return people


def list_projects() -> list[Project]:
    """Return every project, by name (the columns of the role forms)."""
    return list(db.session.scalars(select(Project).order_by(Project.name, Project.id)))


def get_person(user_id: int) -> User:
    """Return an account.

    :raises NotFound: when there is no such account.
    """
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound("No such account.")
    return user


def grants_of(user: User) -> dict[int | None, str]:
    """Return the account's roles as grants."""
    return {r.project_id: r.role for r in user.roles}


def recent_events(limit: int = 20) -> list[AuditEvent]:
    """Return the latest audited changes to accounts, newest first."""
    query = select(AuditEvent).where(AuditEvent.object_type == "account")
    query = query.order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc()).limit(limit)
    return list(db.session.scalars(query))


def invite(actor: User, email: str, grants: Grants, now: datetime) -> IssuedLink:
    """Create a pending account with the granted roles and an invitation link.

    :raises ValidationError: malformed or taken email, no role granted, unknown role or project.
    """
    address = normalise_email(email)
    if db.session.scalar(select(User.id).where(User.email == address)) is not None:
        raise ValidationError(f"An account with email {address} already exists.", "email")
    clean = _checked_grants(grants)
    user = User(
        email=address,
        password_hash=NO_PASSWORD,
        invitation_pending=True,
    )
    user.roles = [ProjectRole(project_id=pid, role=role) for pid, role in clean.items()]
    db.session.add(user)
    db.session.flush()
    link = _issue(actor, user, "invitation", now)
    _record(actor, "invite", user, after=_described(clean))
    db.session.commit()
    return link


def set_roles(actor: User, user_id: int, grants: Grants) -> User:
    """Replace an account's roles.

    :raises NotFound: no such account.
    :raises ValidationError: no role, an unknown role or project.
    :raises Conflict: it would leave no organisation admin.
    """
    user = get_person(user_id)
    clean = _checked_grants(grants)
    before = grants_of(user)
    if clean.get(None) != "admin":
        _keep_an_admin(user)
    if clean == before:
        return user
    _apply(user, clean)
    _record(actor, "change_roles", user, before=_described(before), after=_described(clean))
    db.session.commit()
    return user


def set_enabled(actor: User, user_id: int, enabled: bool) -> User:
    """Disable an account (its sessions end at once) or enable it again.

    :raises NotFound: no such account.
    :raises Conflict: disabling oneself, or the last organisation admin.
    """
    user = get_person(user_id)
    if user.active == enabled:
        return user
    if not enabled:
        if user.id == actor.id:
            raise Conflict("You cannot disable your own account; ask another admin.")
        _keep_an_admin(user)
        user.session_version += 1
    before = status_of(user)
    user.active = enabled
    action = "enable" if enabled else "disable"
    _record(actor, action, user, before={"status": before}, after={"status": status_of(user)})
    db.session.commit()
    return user


def issue_reset_link(actor: User, user_id: int, now: datetime) -> IssuedLink:
    """Issue a one-time password-reset link (for an invited account: a new invitation).

    :raises NotFound: no such account.
    :raises Conflict: the account is disabled (enable it first).
    """
    user = get_person(user_id)
    if not user.active:
        raise Conflict("This account is disabled; enable it before sending it a link.")
    purpose = "invitation" if user.invitation_pending else "password_reset"
    link = _issue(actor, user, purpose, now)
    after = {"link": purpose.replace("_", " "), "expires": f"{link.expires_at:%Y-%m-%d %H:%M} UTC"}
    action = "invite" if user.invitation_pending else "issue_reset_link"
    _record(actor, action, user, after=after)
    db.session.commit()
    return link


def find_link(token: str, purpose: str, now: datetime) -> AccountToken:
    """Return the unused, unexpired link of this purpose for a secret.

    :raises NotFound: unknown, used, replaced or expired link, or a disabled account.
    """
    row = db.session.scalar(
        select(AccountToken).where(
            AccountToken.token_hash == _digest(token), AccountToken.purpose == purpose
        )
    )
    if row is None or row.used_at is not None or row.expires_at <= now or not row.user.active:
        raise NotFound(LINK_INVALID)
    return row


def use_link(token: str, purpose: str, password: str, now: datetime) -> User:
    """Set the account's password through a link, which is then used up.

    Accepting an invitation activates the account; a reset ends the account's other sessions.

    :raises NotFound: the link is not valid (see ``find_link``).
    :raises ValidationError: the password breaks the rule.
    """
    row = find_link(token, purpose, now)
    db.session.refresh(row, with_for_update=True)  # two tabs using one link: one wins
    if row.used_at is not None:
        raise NotFound(LINK_INVALID)
    user = row.user
    check_password(password, user.email)
    action = "accept_invitation" if user.invitation_pending else "reset_password"
    before = {"status": status_of(user), "password": "previous"}
    user.password_hash = hash_password(password)
    user.invitation_pending = False
    user.session_version += 1
    user.last_login_at = now
    row.used_at = now
    after = {"status": status_of(user), "password": NEW_PASSWORD}
    _record(user, action, user, before=before, after=after)
    db.session.commit()
    return user


def change_password(actor: User, current: str, new: str) -> User:
    """Change one's own password; every other session of the account ends.

    :raises ValidationError: wrong current password, or a new one the rule refuses.
    """
    user = actor
    if not check_password_hash(user.password_hash, current):
        raise ValidationError("The current password is not right.", "current_password")
    check_password(new, user.email, "new_password")
    if new == current:
        raise ValidationError("The new password is the current one.", "new_password")
    user.password_hash = hash_password(new)
    user.session_version += 1
    before, after = {"password": "previous"}, {"password": NEW_PASSWORD}
    _record(user, "change_password", user, before=before, after=after)
    db.session.commit()
    return user


def _issue(actor: User, user: User, purpose: str, now: datetime) -> IssuedLink:
    db.session.execute(
        delete(AccountToken).where(
            AccountToken.user_id == user.id,
            AccountToken.purpose == purpose,
            AccountToken.used_at.is_(None),
        )
    )
    token = secrets.token_urlsafe(32)
    expires = now + LIFETIMES[purpose]
    db.session.add(
        AccountToken(
            user_id=user.id,
            purpose=purpose,
            token_hash=_digest(token),
            created_at=now,
            expires_at=expires,
            created_by_id=actor.id,
        )
    )
    return IssuedLink(user, purpose, token, expires)


def _apply(user: User, grants: Mapping[int | None, str]) -> None:
    """Change the role rows in place (a project keeps its row: the unique key holds)."""
    for row in list(user.roles):
        if row.project_id in grants:
            row.role = grants[row.project_id]
        else:
            user.roles.remove(row)
    kept = {row.project_id for row in user.roles}
    for pid, role in grants.items():
        if pid not in kept:
            user.roles.append(ProjectRole(project_id=pid, role=role))


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def _checked_grants(grants: Grants) -> dict[int | None, str]:
    clean = {pid: role for pid, role in grants.items() if role}
    if not clean:
        raise ValidationError("Choose a role on at least one project.", "roles")
    unknown = sorted(role for role in clean.values() if role not in ROLES)
    if unknown:
        raise ValidationError(f"Unknown role {unknown[0]!r}.", "roles")
    ids = {pid for pid in clean if pid is not None}
    found = set(db.session.scalars(select(Project.id).where(Project.id.in_(ids)))) if ids else set()
    if ids - found:
        raise ValidationError("That project does not exist any more; reload the page.", "roles")
    return clean


def _keep_an_admin(user: User) -> None:
    """Refuse a change that takes ``user``'s organisation admin rights away if no other
    enabled, accepted organisation admin remains. The rows are locked, so two admins
    demoting each other at once cannot both pass."""
    if not is_org_admin(user) or not user.active or user.invitation_pending:
        return
    query = (
        select(User.id)
        .join(ProjectRole, ProjectRole.user_id == User.id)
        .where(
            ProjectRole.project_id.is_(None),
            ProjectRole.role == "admin",
            User.active.is_(True),
            User.invitation_pending.is_(False),
        )
        .with_for_update()
    )
    others = [uid for uid in db.session.scalars(query) if uid != user.id]
    if not others:
        raise Conflict(LAST_ADMIN.format(email=user.email))


def _described(grants: Mapping[int | None, str]) -> dict[str, str]:
    """Grants as the audit log shows them: project name -> role."""
    names = {p.id: p.name for p in db.session.scalars(select(Project))}
    return {
        ("every project" if pid is None else names.get(pid, f"project {pid}")): role
        for pid, role in sorted(grants.items(), key=lambda item: (item[0] is not None, item[0]))
    }


def _record(
    actor: User, action: str, user: User, *, before: object = None, after: object = None
) -> None:
    audit.record(
        actor, action, "account", object_id=user.id, object_label=user.email,
        before=before, after=after,
    )  # fmt: skip
