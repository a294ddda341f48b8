"""QA accounts and their identities: "this is me" links and who may change an identity.

SPEC §1: editors and admins change any identity; a QA user changes overrides and traits
only on identities linked to their own account; viewers change nothing.

Issue 15: in a *production* environment (real customers) a QA user may link, and change,
only an identity that is recognisably their own: its identifier, or its ``email`` trait,
is their account email. Anything else needs an editor or admin. The whole rule lives here;
pages and blueprints only ask it.
"""

from __future__ import annotations

import string
from dataclasses import dataclass

from sqlalchemy import select

from ...extensions import db
from ...models import Environment, Identity, IdentityLink, Trait, User
from .. import accounts, audit
from ..errors import Forbidden, NotFound, ValidationError
from ..locking import lock_identity

EMAIL_TRAIT = "email"
# Blanks an app or a person may leave around an address: ASCII whitespace only. Other
# invisible characters (NBSP, zero-width space) make a different string and never match.
_BLANKS = " \t\r\n\f\v"
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def email_form(text: str) -> str:
    """Return text as it is compared with an account email (stored lower-cased).

    Mail systems treat addresses case-insensitively in practice, and SDKs pass on what
    people typed, so ASCII blanks around it are trimmed and ASCII letters lower-cased.
    Nothing else is folded: ``str.lower``/``casefold`` would merge look-alikes (the Kelvin
    sign "\u212a" lower-cases to "k", "ß" case-folds to "ss"), letting another person's
    address pass for the QA user's.
    """
    return text.strip(_BLANKS).translate(_ASCII_LOWER)


def email_trait_counts(environment: Environment) -> bool:
    """Tell whether an identity's ``email`` trait may prove whose identity it is.

    Where the environment stores traits sent with its client-side key, anyone holding that
    public key (every app user, every QA user) can write any identity's ``email`` trait,
    so there it proves nothing and only the identifier counts.
    """
    return not environment.allow_client_traits


@dataclass(frozen=True)
class LinkRule:
    """Which identities a QA user may link to themself in one environment."""

    production: bool
    email: str
    email_trait_counts: bool

    @property
    def summary(self) -> str:
        """The rule in one sentence, shown before a QA user tries."""
        if not self.production:
            return (
                "You can link any identity here to yourself for testing: "
                "type its identifier to confirm."
            )
        proofs = "identifier or email trait" if self.email_trait_counts else "identifier"
        text = (
            f"Production environment: you can link only identities whose {proofs} is "
            f"{self.email}; an editor or admin can link any other."
        )
        if not self.email_trait_counts:
            text += (
                " Email traits do not count here, since apps with the public client-side"
                " key may set them."
            )
        return text


def link_rule(user: User, environment: Environment) -> LinkRule:
    """Return the rule for QA users linking identities to themself in an environment."""
    return LinkRule(environment.production, user.email, email_trait_counts(environment))


def is_own_identity(user: User, identity: Identity) -> bool:
    """Tell whether the identity recognisably belongs to the user (production rule).

    True when the identifier, or (where it counts) the string ``email`` trait, equals
    the user's account email as ``email_form`` compares them. A number or boolean
    ``email`` trait never counts.
    """
    if email_form(identity.identifier) == user.email:
        return True
    if not email_trait_counts(identity.environment):
        return False
    trait = db.session.scalar(
        select(Trait).where(Trait.identity_id == identity.id, Trait.key == EMAIL_TRAIT)
    )
    return (
        trait is not None
        and isinstance(trait.value, str)
        and (email_form(trait.value) == user.email)
    )


def may_link_self(user: User, identity: Identity) -> bool:
    """Tell whether the rule lets a QA user link this identity to themself.

    Anywhere but production: any identity (test accounts). In production: only their own.
    """
    return not identity.environment.production or is_own_identity(user, identity)


def _link_of(user: User, identity_id: int) -> IdentityLink | None:
    return db.session.scalar(
        select(IdentityLink).where(
            IdentityLink.user_id == user.id, IdentityLink.identity_id == identity_id
        )
    )


def link_grants_edit(link: IdentityLink, identity: Identity) -> bool:
    """Tell whether a link lets its (QA) user change the identity.

    Outside production every link does. In production a link the QA user made themself
    counts only while the identity is recognisably theirs: a link made before the
    environment became production, or before the identity stopped matching, grants
    nothing (it stays listed, and can be removed). A link an editor or admin made for
    them (``created_by`` someone else) was their decision to make, and keeps counting.
    """
    if not identity.environment.production:
        return True
    return _vouched(link) or is_own_identity(link.user, identity)


def is_linked(user: User, identity_id: int) -> bool:
    """Tell whether the identity is linked to the user's account."""
    return _link_of(user, identity_id) is not None


def can_edit_identity(user: User, identity: Identity) -> bool:
    """Tell whether the user may change this identity's overrides and traits.

    :param user: the dashboard user
    :param identity: the identity to change
    :return: True for editors and admins, and for QA users on their linked identities
        (in production, only where the link still counts: see ``link_grants_edit``)
    """
    project_id = identity.environment.project_id
    if accounts.has_role(user, project_id, "editor"):
        return True
    if not accounts.has_role(user, project_id, "qa"):
        return False
    link = _link_of(user, identity.id)
    return link is not None and link_grants_edit(link, identity)


def ensure_can_edit(user: User, identity: Identity) -> None:
    """Refuse the change unless the user may edit the identity.

    :raises Forbidden: for viewers, for QA users on identities not linked to them, and on
        linked ones that the production rule does not recognise as theirs
    """
    if can_edit_identity(user, identity):
        return
    if identity.environment.production and is_linked(user, identity.id):
        raise Forbidden(
            "In this production environment your link no longer lets you change this "
            "identity: it is not recognisably yours. An editor or admin can link it for you."
        )
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
    """Return the ids of the identities linked to the user in one environment that the
    user may change (a link that grants nothing in production is left out)."""
    return [
        identity.id
        for identity in my_identities(user, environment_id)
        if can_edit_identity(user, identity)
    ]


def read_only_links(user: User, environment_id: int) -> set[int]:
    """Return the ids of the user's linked identities here that the user may not change."""
    return {
        identity.id
        for identity in my_identities(user, environment_id)
        if not can_edit_identity(user, identity)
    }


@dataclass(frozen=True)
class LinkOffer:
    """What the "This is me" area offers one user on one identity."""

    rule: LinkRule
    can_link_others: bool  # editors and admins: any identity, any account, no proof
    may_link_self: bool  # the rule lets this (QA) user link it to themself, with proof


def link_offer(user: User, identity: Identity) -> LinkOffer:
    """Say what the user may link on this identity, and under which rule."""
    project_id = identity.environment.project_id
    return LinkOffer(
        rule=link_rule(user, identity.environment),
        can_link_others=accounts.has_role(user, project_id, "editor"),
        may_link_self=accounts.has_role(user, project_id, "qa") and may_link_self(user, identity),
    )


@dataclass(frozen=True)
class EnvironmentLink:
    """One "this is me" link in an environment, for the admins' settings page."""

    link: IdentityLink
    identity: Identity
    grants_edit: bool  # for a QA user: whether the link still lets them change it


def environment_links(environment: Environment) -> list[EnvironmentLink]:
    """Return every link to an identity of the environment, by identifier then email."""
    rows = db.session.execute(
        select(IdentityLink, Identity)
        .join(Identity, IdentityLink.identity_id == Identity.id)
        .join(User, IdentityLink.user_id == User.id)
        .where(Identity.environment_id == environment.id)
        .order_by(Identity.identifier_prefix, Identity.id, User.email)
    ).all()
    return [EnvironmentLink(link, ident, link_grants_edit(link, ident)) for link, ident in rows]


def _target_user(actor: User, identity: Identity, email: str | None) -> User:
    if not email or email.strip().lower() == actor.email:
        return actor
    if not accounts.has_role(actor, identity.environment.project_id, "editor"):
        raise Forbidden("Only editors may link an identity to someone else.")
    target: User | None = db.session.scalar(select(User).where(User.email == email.strip().lower()))
    if target is None or accounts.role_for(target, identity.environment.project_id) is None:
        raise ValidationError(f"No user {email!r} on this project.", field="email")
    return target


def link_identity(
    actor: User, identity: Identity, *, proof: str | None, email: str | None = None
) -> IdentityLink:
    """Link an identity to a dashboard account ("This is me") and commit.

    Editors and admins may link anyone without proof. A QA user may link only
    themself, must type the identity's identifier exactly as proof, and in a production
    environment may link only an identity that is their own (``is_own_identity``).

    :param actor: who asks
    :param identity: the identity to link
    :param proof: the identifier as typed by a QA user
    :param email: the account to link (editors only; default: the actor)
    :return: the link (an existing one is returned unchanged)
    :raises Forbidden: for viewers, a QA user linking someone else, or a QA user linking
        someone else's identity in production
    :raises ValidationError: wrong proof or unknown account
    """
    project_id = identity.environment.project_id
    if not accounts.has_role(actor, project_id, "qa"):
        raise Forbidden("Viewers cannot link identities.")
    target = _target_user(actor, identity, email)
    is_editor = accounts.has_role(actor, project_id, "editor")
    if not is_editor and not may_link_self(actor, identity):
        rule = link_rule(actor, identity.environment)
        raise Forbidden(f"This identity is not yours by the production rule. {rule.summary}")
    if not is_editor and proof != identity.identifier:
        raise ValidationError(
            "Type the identity's identifier exactly to confirm it is you.", field="proof"
        )
    lock_identity(identity)  # an erasure meanwhile: NotFound, not a foreign key error
    existing = _link_of(target, identity.id)
    if existing is not None:
        if is_editor and target.id != actor.id and not _vouched(existing):
            # An editor linking again vouches for a link the QA user made themself, so it
            # counts in production from now on.
            existing.created_by_id = actor.id
            _record_link(actor, identity, target, before={"user": target.email})
            db.session.commit()
        return existing
    link = IdentityLink(user_id=target.id, identity_id=identity.id, created_by_id=actor.id)
    db.session.add(link)
    _record_link(actor, identity, target, before=None)
    db.session.commit()
    return link


def _vouched(link: IdentityLink) -> bool:
    """Tell whether someone other than the linked user (an editor or admin) made the link."""
    return link.created_by_id is not None and link.created_by_id != link.user_id


def _record_link(actor: User, identity: Identity, target: User, before: object) -> None:
    audit.record(
        actor,
        "link",
        "identity_link",
        object_id=identity.id,
        object_label=f"{identity.identifier} ↔ {target.email}",
        project_id=identity.environment.project_id,
        environment_id=identity.environment_id,
        identity_id=identity.id,
        before=before,
        after={"user": target.email, "linked_by": actor.email},
    )


def unlink_identity(actor: User, identity: Identity, user_id: int) -> None:
    """Remove a link; a QA user may remove only their own, editors any, and commit.

    :raises Forbidden: for viewers, or a QA user removing someone else's link
    :raises NotFound: when there is no such link
    """
    project_id = identity.environment.project_id
    own = user_id == actor.id and accounts.has_role(actor, project_id, "qa")
    if not (own or accounts.has_role(actor, project_id, "editor")):
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
