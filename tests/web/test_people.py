"""People pages: who sees them, invitations end to end, disabling, links, passwords, mail."""

from __future__ import annotations

import re
import smtplib
from typing import Any

import pytest
from flask import g
from sqlalchemy import select

from tests.factories import make_environment, make_project, make_user
from webapp.extensions import db
from webapp.models import AccountToken, User

# Pages and rules: runs once, on SQLite (see tests/conftest.py).
pytestmark = pytest.mark.databases("sqlite")

GOOD = "a long fresh passphrase"
LINK = re.compile(r'id="link-url" value="(http://localhost/(invitation|password-reset)/[^"]+)"')


@pytest.fixture
def org(app):
    demo, other = make_project("Demo"), make_project("Other")
    make_environment(demo, "Development")
    make_environment(other, "Production")
    root = make_user("root@example.com", "admin", all_projects=True)
    padmin = make_user("padmin@example.com", "admin", demo)
    editor = make_user("editor@example.com", "editor", demo)
    db.session.commit()
    return {"demo": demo, "other": other, "root": root, "padmin": padmin, "editor": editor}


def login(app, email, password="password123"):
    client = app.test_client()
    response = send(client, "post", "/login", data={"email": email, "password": password})
    assert response.status_code == 302, f"{email} could not log in"
    return client


def send(client, method, url, **kwargs):
    g.pop("_login_user", None)  # each client's request stands alone (one app context)
    return getattr(client, method)(url, **kwargs)


def issued_link(response) -> str:
    found = LINK.search(response.get_data(as_text=True))
    assert found, response.get_data(as_text=True)[:2000]
    return found.group(1).removeprefix("http://localhost")


def invite(client, email, **roles):
    return send(client, "post", "/people/invitations", data={"email": email, **roles})


# ---- who sees the people pages -------------------------------------------------------------


def test_people_page__org_admin__lists_accounts_with_roles_and_a_nav_entry(app, org):
    client = login(app, "root@example.com")
    response = send(client, "get", "/people")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'href="/people"' in html and 'aria-current="page">People</a>' in html
    for email in ("root@example.com", "padmin@example.com", "editor@example.com"):
        assert email in html
    assert "every project: <strong>admin</strong>" in html
    assert "Demo: <strong>editor</strong>" in html
    assert "No account has been changed from this page yet." in html  # empty state


@pytest.mark.parametrize("email", ["padmin@example.com", "editor@example.com"])
def test_people_pages__not_org_admin__refused_and_no_nav_entry(app, org, email):
    client = login(app, email)
    assert 'href="/people"' not in send(client, "get", "/").get_data(as_text=True)
    for method, url in [("get", "/people"), ("get", f"/people/{org['editor'].id}"),
                        ("post", "/people/invitations"),
                        ("post", f"/people/{org['editor'].id}/disable")]:  # fmt: skip
        assert send(client, method, url).status_code == 403, url


def test_password_page__every_role__has_a_link_to_it(app, org):
    client = login(app, "editor@example.com")
    assert 'href="/account/password"' in send(client, "get", "/").get_data(as_text=True)
    assert send(client, "get", "/account/password").status_code == 200


# ---- invitations ---------------------------------------------------------------------------


def test_invitation__accepted__logs_in_with_the_granted_project_only(app, org):
    admin = login(app, "root@example.com")
    response = invite(admin, "new@example.com", **{f"role_{org['demo'].id}": "viewer"})
    assert response.status_code == 200
    assert "No mail server is configured" in response.get_data(as_text=True)
    url = issued_link(response)

    newcomer = app.test_client()
    form = send(newcomer, "get", url)
    assert form.status_code == 200 and "new@example.com" in form.get_data(as_text=True)
    done = send(newcomer, "post", url, data={"password": GOOD, "confirm": GOOD})
    assert done.status_code == 302

    home = send(newcomer, "get", "/").get_data(as_text=True)
    assert "Demo" in home and "Other" not in home
    other_env = org["other"].environments[0].id
    assert send(newcomer, "get", f"/environments/{other_env}/features").status_code == 404
    # The link is used up.
    again = send(app.test_client(), "get", url)
    assert again.status_code == 404 and "not valid" in again.get_data(as_text=True)


def test_invitation__pending__cannot_log_in_and_is_listed_as_invited(app, org):
    admin = login(app, "root@example.com")
    invite(admin, "new@example.com", role_all="viewer")
    response = send(app.test_client(), "post", "/login",
                    data={"email": "new@example.com", "password": "!"})  # fmt: skip
    assert response.status_code == 422
    assert "status-invited" in send(admin, "get", "/people").get_data(as_text=True)


def test_invitation__bad_password__form_again_with_the_reason_and_link_still_valid(app, org):
    admin = login(app, "root@example.com")
    url = issued_link(invite(admin, "new@example.com", role_all="viewer"))
    newcomer = app.test_client()
    for password, confirm, reason in [
        ("password123", "password123", "too common"),
        ("short", "short", "at least 10"),
        ("new@example.com", "new@example.com", "not be your email"),
        (GOOD, GOOD + "x", "The passwords differ"),
    ]:
        response = send(newcomer, "post", url, data={"password": password, "confirm": confirm})
        assert response.status_code == 422 and reason in response.get_data(as_text=True)
    assert send(newcomer, "post", url, data={"password": GOOD, "confirm": GOOD}).status_code == 302


def test_invite__refused__page_again_with_inline_error(app, org):
    admin = login(app, "root@example.com")
    response = invite(admin, "Editor@Example.com", role_all="viewer")
    assert response.status_code == 422
    assert "already exists" in response.get_data(as_text=True)
    assert 'id="people-table"' in response.get_data(as_text=True)


# ---- disabling, roles ----------------------------------------------------------------------


def test_disable__open_session__logged_out_on_its_next_request(app, org):
    editor = login(app, "editor@example.com")
    env = org["demo"].environments[0].id
    assert send(editor, "get", f"/environments/{env}/features").status_code == 200
    admin = login(app, "root@example.com")

    response = send(admin, "post", f"/people/{org['editor'].id}/disable")
    assert response.status_code == 302

    after = send(editor, "get", f"/environments/{env}/features")
    assert after.status_code == 302 and "/login" in after.headers["Location"]
    htmx = send(editor, "get", f"/environments/{env}/features", headers={"HX-Request": "true"})
    assert htmx.status_code == 401
    # Enabled again, the old session stays ended; a new login works.
    send(admin, "post", f"/people/{org['editor'].id}/enable")
    assert send(editor, "get", f"/environments/{env}/features").status_code == 302
    login(app, "editor@example.com")


def test_disable__remember_cookie__does_not_bring_the_session_back(app, org):
    editor = app.test_client()
    send(editor, "post", "/login",
         data={"email": "editor@example.com", "password": "password123", "remember": "y"})
    with editor.session_transaction() as session:  # only the remember cookie is left
        session.clear()
    assert send(editor, "get", "/").status_code == 200
    admin = login(app, "root@example.com")
    send(admin, "post", f"/people/{org['editor'].id}/disable")
    with editor.session_transaction() as session:
        session.clear()
    assert send(editor, "get", "/").status_code == 302


def test_disable__self__refused_inline(app, org):
    admin = login(app, "root@example.com")
    response = send(admin, "post", f"/people/{org['root'].id}/disable")
    assert response.status_code == 409
    assert "cannot disable your own account" in response.get_data(as_text=True)
    assert db.session.get(User, org["root"].id).active is True


def test_roles__changed__the_user_sees_the_new_projects(app, org):
    editor = login(app, "editor@example.com")
    admin = login(app, "root@example.com")
    data = {f"role_{org['other'].id}": "viewer", f"role_{org['demo'].id}": ""}
    response = send(admin, "post", f"/people/{org['editor'].id}/roles", data=data)
    assert response.status_code == 302
    home = send(editor, "get", "/").get_data(as_text=True)
    assert "Other" in home and "Demo" not in home


def test_roles__last_org_admin_demotes_self__refused_inline(app, org):
    admin = login(app, "root@example.com")
    response = send(admin, "post", f"/people/{org['root'].id}/roles", data={"role_all": "editor"})
    assert response.status_code == 409
    assert "last organisation admin" in response.get_data(as_text=True)


# ---- reset links and one's own password ----------------------------------------------------


def test_reset_link__sets_a_new_password_and_ends_the_old_sessions(app, org):
    old_session = login(app, "editor@example.com")
    admin = login(app, "root@example.com")
    url = issued_link(send(admin, "post", f"/people/{org['editor'].id}/reset-link"))
    assert url.startswith("/password-reset/")
    user = app.test_client()
    assert send(user, "post", url, data={"password": GOOD, "confirm": GOOD}).status_code == 302
    assert send(user, "get", "/").status_code == 200
    assert send(old_session, "get", "/").status_code == 302
    login(app, "editor@example.com", GOOD)


def test_change_password__this_session_stays_others_end(app, org):
    here = login(app, "editor@example.com")
    elsewhere = login(app, "editor@example.com")
    data = {"current_password": "password123", "new_password": GOOD, "confirm": GOOD}
    response = send(here, "post", "/account/password", data=data)
    assert response.status_code == 302
    assert send(here, "get", "/").status_code == 200
    assert send(elsewhere, "get", "/").status_code == 302
    login(app, "editor@example.com", GOOD)


def test_tokens__only_their_hash_is_stored(app, org):
    admin = login(app, "root@example.com")
    url = issued_link(invite(admin, "new@example.com", role_all="viewer"))
    secret = url.rsplit("/", 1)[1]
    stored = db.session.scalars(select(AccountToken.token_hash)).all()
    assert stored and all(secret not in value for value in stored)


# ---- mail ----------------------------------------------------------------------------------


class FakeSMTP:
    """Stands in for smtplib.SMTP: records what would have been sent."""

    sent: list[Any] = []
    fail = False

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.address = (host, port)

    def __enter__(self) -> FakeSMTP:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def starttls(self, context: Any = None) -> None:
        self.tls = True

    def login(self, user: str, password: str) -> None:
        self.credentials = (user, password)

    def send_message(self, message: Any) -> None:
        if FakeSMTP.fail:
            raise smtplib.SMTPRecipientsRefused({})
        FakeSMTP.sent.append((self, message))


@pytest.fixture
def smtp(app, monkeypatch):
    app.config.update(SMTP_HOST="mail.test", SMTP_USER="bot", SMTP_PASSWORD="pw",
                      SMTP_FROM="flagpost@acme.test")  # fmt: skip
    FakeSMTP.sent, FakeSMTP.fail = [], False
    monkeypatch.setattr(smtplib, "SMTP", FakeSMTP)
    return FakeSMTP


def test_invite__smtp_configured__mails_the_link(app, org, smtp):
    admin = login(app, "root@example.com")
    response = invite(admin, "new@example.com", role_all="viewer")
    url = issued_link(response)
    assert "also sent by mail" in response.get_data(as_text=True)
    [(connection, message)] = smtp.sent
    assert connection.address == ("mail.test", 587) and connection.tls is True
    assert connection.credentials == ("bot", "pw")
    assert (message["To"], message["From"]) == ("new@example.com", "flagpost@acme.test")
    assert url in message.get_content()


def test_invite__mail_fails__link_still_shown_with_the_reason(app, org, smtp):
    smtp.fail = True
    admin = login(app, "root@example.com")
    response = invite(admin, "new@example.com", role_all="viewer")
    assert response.status_code == 200
    issued_link(response)
    assert "The mail was not sent" in response.get_data(as_text=True)


def test_smtp_settings__read_from_the_environment():
    from webapp.config import from_environment

    found = from_environment({"FLAGPOST_SMTP_HOST": "mail", "FLAGPOST_SMTP_PORT": "2525",
                              "FLAGPOST_SMTP_TLS": "none"})  # fmt: skip
    assert found == {"SMTP_HOST": "mail", "SMTP_PORT": 2525, "SMTP_TLS": "none"}
    assert type(found["SMTP_PORT"]) is int


# ---- many and long -------------------------------------------------------------------------


def test_people_page__thirty_accounts_and_long_emails__all_listed(app, org):
    long_email = "x" * 60 + "." + "y" * 60 + "@" + "z" * 60 + ".example.com"
    for n in range(30):
        make_user(f"person{n:02d}@example.com", "viewer", org["demo"])
    make_user(long_email, "qa", org["other"])
    db.session.commit()
    html = send(login(app, "root@example.com"), "get", "/people").get_data(as_text=True)
    assert html.count('class="person person-') == 34
    assert long_email in html and "Other: <strong>qa</strong>" in html


def test_roles__admin_steps_down_with_another_admin_left__sent_to_the_dashboard(app, org):
    make_user("second@example.com", "admin", all_projects=True)
    db.session.commit()
    admin = login(app, "root@example.com")
    response = send(admin, "post", f"/people/{org['root'].id}/roles", data={"role_all": "editor"})
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert send(admin, "get", "/people").status_code == 403
