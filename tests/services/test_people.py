"""People service: invitations, roles, the last-admin rule, disabling, links and passwords."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select
from werkzeug.security import check_password_hash

from tests.factories import make_project, make_user
from webapp.clock import utcnow
from webapp.extensions import db
from webapp.models import AccountToken, AuditEvent, ProjectRole, User
from webapp.services import accounts, passwords, people
from webapp.services.errors import Conflict, NotFound, ValidationError

# Database behaviour (constraints, row locks, stored hashes): both databases.
pytestmark = pytest.mark.databases("sqlite", "postgres")

GOOD = "correct horse battery"


@pytest.fixture
def org(app):
    demo, other = make_project("Demo"), make_project("Other")
    root = make_user("root@example.com", "admin", all_projects=True)
    editor = make_user("editor@example.com", "editor", demo)
    project_admin = make_user("padmin@example.com", "admin", demo)
    db.session.commit()
    return {"demo": demo, "other": other, "root": root, "editor": editor, "padmin": project_admin}


def events(action):
    return db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)).all()


# ---- who counts as admin -------------------------------------------------------------------


def test_is_org_admin__only_admin_on_every_project__counts(org):
    assert people.is_org_admin(org["root"]) is True
    assert people.is_org_admin(org["padmin"]) is False
    assert people.is_org_admin(org["editor"]) is False
    every_editor = make_user("ed-all@example.com", "editor", all_projects=True)
    assert people.is_org_admin(every_editor) is False


# ---- invitations ---------------------------------------------------------------------------


def test_invite__creates_a_pending_account_with_roles_and_a_hashed_token(org):
    now = utcnow()
    link = people.invite(org["root"], " New@Example.com ", {org["demo"].id: "qa"}, now)

    user = db.session.scalar(select(User).where(User.email == "new@example.com"))
    assert user is not None and user.invitation_pending is True and user.is_active is False
    assert [(r.project_id, r.role) for r in user.roles] == [(org["demo"].id, "qa")]
    stored = db.session.scalars(select(AccountToken)).all()
    assert len(stored) == 1
    assert stored[0].token_hash != link.token and link.token not in stored[0].token_hash
    assert stored[0].expires_at == now + people.INVITATION_LIFETIME
    assert link.expires_at == now + timedelta(days=7)
    # An invited account cannot log in with anything before it accepts.
    assert accounts.authenticate("new@example.com", "!") is None
    [event] = events("invite")
    assert (event.object_type, event.object_label, event.actor_id) == (
        "account", "new@example.com", org["root"].id
    )
    assert event.after == {"Demo": "qa"}


@pytest.mark.parametrize(
    ("email", "grants", "field", "message"),
    [
        ("editor@example.com", {None: "viewer"}, "email", "already exists"),
        ("EDITOR@example.com", {None: "viewer"}, "email", "already exists"),
        ("not an email", {None: "viewer"}, "email", "Invalid email"),
        ("x@example.com", {}, "roles", "at least one project"),
        ("x@example.com", {None: ""}, "roles", "at least one project"),
        ("x@example.com", {None: "god"}, "roles", "Unknown role"),
        ("x@example.com", {2**31 - 1: "viewer"}, "roles", "does not exist"),
    ],
)
def test_invite__bad_input__refused_and_nothing_stored(org, email, grants, field, message):
    before = db.session.scalar(select(func.count(User.id)))
    with pytest.raises(ValidationError, match=message) as caught:
        people.invite(org["root"], email, grants, utcnow())
    assert caught.value.field == field
    db.session.rollback()
    assert db.session.scalar(select(func.count(User.id))) == before
    assert db.session.scalar(select(func.count(AccountToken.id))) == 0


def test_accept_invitation__sets_password_activates_and_uses_the_link_up(org):
    now = utcnow()
    link = people.invite(org["root"], "new@example.com", {org["demo"].id: "viewer"}, now)

    user = people.use_link(link.token, "invitation", GOOD, now)

    assert user.invitation_pending is False and user.is_active is True
    assert accounts.authenticate("new@example.com", GOOD) is not None
    with pytest.raises(NotFound):
        people.use_link(link.token, "invitation", GOOD + "x", now)
    assert [e.actor_id for e in events("accept_invitation")] == [user.id]


def test_link__expired_wrong_purpose_or_unknown__is_not_found(org):
    now = utcnow()
    link = people.invite(org["root"], "new@example.com", {None: "viewer"}, now)
    with pytest.raises(NotFound):
        people.find_link(link.token, "invitation", now + timedelta(days=7))
    with pytest.raises(NotFound):
        people.find_link(link.token, "password_reset", now)
    for token in ("", "x", link.token[:-1], link.token + "x", "\udcff", "' OR 1=1 --"):
        with pytest.raises(NotFound):
            people.find_link(token, "invitation", now)
    assert people.find_link(link.token, "invitation", now + timedelta(days=6)).user_id > 0


def test_new_link__voids_the_earlier_unused_one(org):
    now = utcnow()
    first = people.issue_reset_link(org["root"], org["editor"].id, now)
    second = people.issue_reset_link(org["root"], org["editor"].id, now)
    with pytest.raises(NotFound):
        people.find_link(first.token, "password_reset", now)
    assert people.find_link(second.token, "password_reset", now).user_id == org["editor"].id


def test_reset_link__for_an_invited_account__is_a_new_invitation(org):
    now = utcnow()
    people.invite(org["root"], "new@example.com", {None: "viewer"}, now)
    user = db.session.scalar(select(User).where(User.email == "new@example.com"))
    link = people.issue_reset_link(org["root"], user.id, now)
    assert link.purpose == "invitation"


def test_reset_link__sets_a_new_password_and_ends_old_sessions(org):
    now = utcnow()
    editor = org["editor"]
    version = editor.session_version
    link = people.issue_reset_link(org["root"], editor.id, now)
    people.use_link(link.token, "password_reset", GOOD, now)
    assert editor.session_version == version + 1
    assert accounts.authenticate("editor@example.com", GOOD) is not None
    assert accounts.authenticate("editor@example.com", "password123") is None
    assert len(events("issue_reset_link")) == 1 and len(events("reset_password")) == 1


def test_links__of_a_disabled_account__do_not_work(org):
    now = utcnow()
    link = people.issue_reset_link(org["root"], org["editor"].id, now)
    people.set_enabled(org["root"], org["editor"].id, False)
    with pytest.raises(NotFound):
        people.use_link(link.token, "password_reset", GOOD, now)
    with pytest.raises(Conflict, match="disabled"):
        people.issue_reset_link(org["root"], org["editor"].id, now)


# ---- roles and the last admin --------------------------------------------------------------


def test_set_roles__replaces_them_and_audits_before_and_after(org):
    demo, other = org["demo"], org["other"]
    people.set_roles(org["root"], org["editor"].id, {demo.id: "viewer", other.id: "editor"})
    roles = db.session.scalars(
        select(ProjectRole).where(ProjectRole.user_id == org["editor"].id)
    ).all()
    found = sorted((r.project_id, r.role) for r in roles)
    assert found == [(demo.id, "viewer"), (other.id, "editor")]
    [event] = events("change_roles")
    assert event.before == {"Demo": "editor"}
    assert event.after == {"Demo": "viewer", "Other": "editor"}


def test_set_roles__unchanged__records_nothing(org):
    people.set_roles(org["root"], org["editor"].id, {org["demo"].id: "editor", None: ""})
    assert events("change_roles") == []


@pytest.mark.parametrize(
    "grants",
    [
        {None: "editor"},  # demoted everywhere
        {None: ""},  # every-project role removed...
        {None: "", 0: "admin"},  # ...even when made admin of a single project
    ],
)
def test_set_roles__last_org_admin__cannot_be_demoted_even_by_themselves(org, grants):
    grants = {(org["demo"].id if k == 0 else k): v for k, v in grants.items()}
    grants.setdefault(org["demo"].id, "viewer")
    with pytest.raises(Conflict, match="last organisation admin"):
        people.set_roles(org["root"], org["root"].id, grants)
    db.session.rollback()
    assert people.is_org_admin(db.session.get(User, org["root"].id)) is True


def test_last_admin__project_admins_and_pending_or_disabled_admins_do_not_count(org):
    # A pending org admin (invited) and a disabled one cannot run the organisation.
    people.invite(org["root"], "pending@example.com", {None: "admin"}, utcnow())
    second = make_user("second@example.com", "admin", all_projects=True)
    db.session.commit()
    people.set_enabled(org["root"], second.id, False)
    with pytest.raises(Conflict, match="last organisation admin"):
        people.set_roles(org["root"], org["root"].id, {None: "editor"})


def test_set_roles__another_org_admin_left__demoting_oneself_is_allowed(org):
    make_user("second@example.com", "admin", all_projects=True)
    db.session.commit()
    people.set_roles(org["root"], org["root"].id, {None: "viewer"})
    assert people.is_org_admin(org["root"]) is False


# ---- disabling -----------------------------------------------------------------------------


def test_disable__ends_sessions_keeps_audit_and_enable_restores(org):
    editor = org["editor"]
    people.issue_reset_link(org["root"], editor.id, utcnow())
    version = editor.session_version

    people.set_enabled(org["root"], editor.id, False)

    assert editor.active is False and editor.session_version == version + 1
    assert accounts.authenticate("editor@example.com", "password123") is None
    people.set_enabled(org["root"], editor.id, True)
    assert accounts.authenticate("editor@example.com", "password123") is not None
    assert [e.action for e in db.session.scalars(select(AuditEvent).order_by(AuditEvent.id))] == [
        "issue_reset_link", "disable", "enable"
    ]
    assert all(e.object_id == str(editor.id) for e in events("disable") + events("enable"))


def test_disable__oneself_or_the_last_org_admin__refused(org):
    with pytest.raises(Conflict, match="your own account"):
        people.set_enabled(org["root"], org["root"].id, False)
    other = make_user("second@example.com", "admin", all_projects=True)
    db.session.commit()
    # second disables root: allowed (second remains); root then cannot be the one left out.
    people.set_enabled(other, org["root"].id, False)
    with pytest.raises(Conflict, match="your own account"):
        people.set_enabled(other, other.id, False)
    people.set_enabled(other, org["root"].id, True)
    people.set_enabled(org["root"], other.id, False)
    assert people.is_org_admin(org["root"]) and org["root"].active is True


def test_disable__twice__records_one_event(org):
    people.set_enabled(org["root"], org["editor"].id, False)
    people.set_enabled(org["root"], org["editor"].id, False)
    assert len(events("disable")) == 1


def test_unknown_account__not_found(org):
    for call in (
        lambda: people.set_roles(org["root"], 2**31 - 1, {None: "viewer"}),
        lambda: people.set_enabled(org["root"], 2**31 - 1, False),
        lambda: people.issue_reset_link(org["root"], 2**31 - 1, utcnow()),
    ):
        with pytest.raises(NotFound):
            call()


# ---- passwords -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("short", "at least 10"),
        ("123456789", "at least 10"),
        ("x" * 1025, "at most 1,024"),
        ("password123", "too common"),
        ("QWERTYUIOP", "too common"),
        ("editor@example.com", "email address"),
        ("Editor@Example.com", "email address"),
    ],
)
def test_change_password__rule_refuses__nothing_changes(org, password, message):
    editor = org["editor"]
    before = editor.password_hash
    with pytest.raises(ValidationError, match=message) as caught:
        people.change_password(editor, "password123", password)
    assert caught.value.field == "new_password"
    db.session.rollback()
    assert db.session.get(User, editor.id).password_hash == before


def test_change_password__wrong_current_password__refused(org):
    with pytest.raises(ValidationError, match="current password") as caught:
        people.change_password(org["editor"], "not-the-password", GOOD)
    assert caught.value.field == "current_password"


def test_change_password__good__stores_a_new_hash_and_bumps_the_session_version(org):
    editor = org["editor"]
    people.change_password(editor, "password123", GOOD)
    assert check_password_hash(editor.password_hash, GOOD) is True
    assert editor.session_version == 1
    assert [e.actor_id for e in events("change_password")] == [editor.id]


def test_common_password_list__is_bundled_lower_cased_and_sizeable():
    common = passwords.common_passwords()
    assert len(common) >= 200
    assert "password123" in common and "qwertyuiop" in common
    assert all(word == word.lower() and word.strip() == word for word in common)


def test_create_user_cli_service__uses_the_same_rule(org):
    with pytest.raises(ValidationError, match="too common"):
        accounts.create_user("cli@example.com", "password123", "viewer")
    with pytest.raises(ValidationError, match="email address"):
        accounts.create_user("cli@example.com", "cli@example.com", "viewer")
