"""Every page and htmx interaction works under the strict CSP: no violation is reported."""

import pytest
from playwright.sync_api import expect
from werkzeug.security import generate_password_hash

from tests.browser.conftest import screenshot
from tests.factories import FAST_HASH
from webapp.extensions import db
from webapp.models import Environment, Identity
from webapp.services import demo

pytestmark = pytest.mark.browser


def _seed():
    # The demo users get the factories' quick password hash instead of scrypt (about 0.3 s
    # each); the admin still logs in through the real form.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            demo,
            "generate_password_hash",
            lambda password: generate_password_hash(password, method=FAST_HASH),
        )
        result = demo.seed_demo()
    environment = db.session.query(Environment).filter_by(name="Production").one()
    identity = db.session.query(Identity).filter_by(
        environment_id=environment.id, identifier="user-00042").one()
    admin = next(login for login in result.logins if login.role == "admin")
    return environment.id, identity.id, admin


def test_pages_and_htmx_actions__raise_no_csp_violation(live_server, page):
    environment_id, identity_id, admin = live_server.run(_seed)
    violations = []
    page.on("console", lambda message: violations.append(message.text)
            if "Content Security Policy" in message.text else None)
    base = f"{live_server.url}/environments/{environment_id}"
    # Given an admin logged in through the real form
    page.goto(live_server.url + "/login")
    page.fill("input[name=email]", admin.email)
    page.fill("input[name=password]", admin.password)
    page.click("button[type=submit]")
    page.wait_for_selector("text=Your projects")
    # When they search users live, toggle an override, add a builder condition, toggle a flag
    page.goto(base + "/users")
    page.fill("#user-search", "plan = pro")
    expect(page.locator("#users-table")).to_be_attached()
    page.goto(f"{base}/identities/{identity_id}")
    row = page.locator("#flag-dark_mode")
    before = row.locator(".effective-enabled").inner_text()
    row.locator("button", has_text="Turn").first.click()
    expect(row.locator(".effective-enabled")).not_to_have_text(before)
    page.goto(base + "/segments/new")
    conditions = page.locator("[id^=remove-condition-]").count()
    page.click("#add-condition-0")
    # More remove buttons than before: the one at index ``conditions`` exists
    expect(page.locator("[id^=remove-condition-]").nth(conditions)).to_be_attached()
    page.goto(base + "/features")
    toggle = page.locator("button.toggle").first
    was = toggle.get_attribute("aria-checked")
    toggle.click()
    expect(toggle).to_have_attribute("aria-checked", "false" if was == "true" else "true")
    screenshot(page, "features-under-csp")
    # Then the browser reported no Content-Security-Policy violation anywhere
    assert violations == []
