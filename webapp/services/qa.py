"""QA accounts and their identities: "this is me" links and who may change an identity.

SPEC §1: editors and admins change any identity; a QA user changes overrides and traits
only on identities linked to their own account; viewers change nothing.
"""

from __future__ import annotations

from sqlalchemy import select

from ..extensions import db
from ..models import Identity, IdentityLink, User
from . import audit, users
from .errors import Forbidden, NotFound, ValidationError


def is_linked(user: User, identity_id: int) -> bool:
    """Tell whether the identity is linked to the user's account."""
    found = db.session.scalar(
        select(IdentityLink.id).where(
            IdentityLink.user_id == user.id, IdentityLink.identity_id == identity_id
        )
    )
    return found is not None


def can_edit_identity(user: User, identity: Identity) -> bool:
    """Tell whether the user may change this identity's overrides and traits.

    :param user: the dashboard user
    :param identity: the identity to change
    :return: True for editors and admins, and for QA users on their linked identities
    """
    project_id = identity.environment.project_id
    if users.has_role(user, project_id, "editor"):
        return True
    return users.has_role(user, project_id, "qa") and is_linked(user, identity.id)


def ensure_can_edit(user: User, identity: Identity) -> None:
    """Refuse the change unless the user may edit the identity.

    :raises Forbidden: for viewers, and for QA users on identities not linked to them
    """
    if not can_edit_identity(user, identity):
        raise Forbidden("You may only change identities linked to your account.")


def linked_users(identity_id: int) -> list[User]:
    """Return the dashboard users who said "this is me" for an identity, by email."""
    return list(
        db.session.scalars(
            select(User)
            .join(IdentityLink, IdentityLink.user_id == User.id)
            .where(IdentityLink.identity_id == identity_id)
            .order_by(User.email)
        )
    )


def my_identities(user: User, environment_id: int) -> list[Identity]:
    """Return the identities linked to the user in one environment, by identifier."""
    return list(
        db.session.scalars(
            select(Identity)
            .join(IdentityLink, IdentityLink.identity_id == Identity.id)
            .where(IdentityLink.user_id == user.id, Identity.environment_id == environment_id)
            .order_by(Identity.identifier_prefix, Identity.id)
        )
    )


def my_identity_ids(user: User, environment_id: int) -> list[int]:
    """Return the ids of the identities linked to the user in one environment."""
    return [identity.id for identity in my_identities(user, environment_id)]


def _target_user(actor: User, identity: Identity, email: str | None) -> User:
    if not email or email.strip().lower() == actor.email:
        return actor
    if not users.has_role(actor, identity.environment.project_id, "editor"):
        raise Forbidden("Only editors may link an identity to someone else.")
    target: User | None = db.session.scalar(select(User).where(User.email == email.strip().lower()))
    if target is None or users.role_for(target, identity.environment.project_id) is None:
        raise ValidationError(f"No user {email!r} on this project.", field="email")
    return target


def link_identity(
    actor: User, identity: Identity, *, proof: str | None, email: str | None = None
) -> IdentityLink:
    """Link an identity to a dashboard account ("This is me") and commit.

    Editors and admins may link anyone without proof. A QA user may link only
    themself, and must type the identity's identifier exactly as proof.

    :param actor: who asks
    :param identity: the identity to link
    :param proof: the identifier as typed by a QA user
    :param email: the account to link (editors only; default: the actor)
    :return: the link (an existing one is returned unchanged)
    :raises Forbidden: for viewers, or a QA user linking someone else
    :raises ValidationError: wrong proof or unknown account
    """
    project_id = identity.environment.project_id
    if not users.has_role(actor, project_id, "qa"):
        raise Forbidden("Viewers cannot link identities.")
    target = _target_user(actor, identity, email)
    is_editor = users.has_role(actor, project_id, "editor")
    if not is_editor and proof != identity.identifier:
        raise ValidationError(
            "Type the identity's identifier exactly to confirm it is you.", field="proof"
        )
    existing = db.session.scalar(
        select(IdentityLink).where(
            IdentityLink.user_id == target.id, IdentityLink.identity_id == identity.id
        )
    )
    if existing is not None:
        return existing
    link = IdentityLink(user_id=target.id, identity_id=identity.id, created_by_id=actor.id)
    db.session.add(link)
    audit.record(
        actor,
        "link",
        "identity_link",
        object_id=identity.id,
        object_label=f"{identity.identifier} ↔ {target.email}",
        project_id=project_id,
        environment_id=identity.environment_id,
        identity_id=identity.id,
        after={"user": target.email},
    )
    db.session.commit()
    return link


def unlink_identity(actor: User, identity: Identity, user_id: int) -> None:
    """Remove a link; a QA user may remove only their own, editors any, and commit.

    :raises Forbidden: for viewers, or a QA user removing someone else's link
    :raises NotFound: when there is no such link
    """
    project_id = identity.environment.project_id
    own = user_id == actor.id and users.has_role(actor, project_id, "qa")
    if not (own or users.has_role(actor, project_id, "editor")):
        raise Forbidden("You may only remove your own link.")
    link = db.session.scalar(
        select(IdentityLink).where(
            IdentityLink.user_id == user_id, IdentityLink.identity_id == identity.id
        )
    )
    if link is None:
        raise NotFound("No such link.")
    audit.record(
        actor,
        "unlink",
        "identity_link",
        object_id=identity.id,
        object_label=f"{identity.identifier} ↔ {link.user.email}",
        project_id=project_id,
        environment_id=identity.environment_id,
        identity_id=identity.id,
        before={"user": link.user.email},
    )
    db.session.delete(link)
    db.session.commit()
