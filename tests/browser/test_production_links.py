""" "This is me" in Chromium: an admin marks Production, and a QA user sees the rule before
trying, is refused a customer there, links their own identity, and in a non-production
environment links any identity (issue 15)."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import screenshot
from tests.factories import make_environment, make_identity
from tests.web.identities.conftest import build_world

pytestmark = pytest.mark.browser

QA_EMAIL = "qa@example.com"


def _seed() -> dict[str, Any]:
    world = build_world()
    project = world.environment.project
    staging = make_environment(project, "Staging")
    return {
        "production": world.environment.id,
        "customer": world.bob.id,
        "own": make_identity(world.environment, "QA@example.com", {"plan": "free"}).id,
        "staging": staging.id,
        "tester": make_identity(staging, "checkout-tester-7").id,
    }


def _login(page: Any, live_server: Any, email: str) -> None:
    page.goto(live_server.url + "/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", "password123")
    page.click("button[type=submit]")
    page.wait_for_selector("text=Your projects")


def _logout(page: Any) -> None:
    page.context.clear_cookies()


def _identity(live_server: Any, environment_id: int, identity_id: int) -> str:
    return f"{live_server.url}/environments/{environment_id}/identities/{identity_id}"


def _post_link_anyway(page: Any, url: str, proof: str) -> int:
    """Send the link request the page did not offer, with the page's own CSRF token."""
    return int(page.evaluate(
        """async ([url, proof]) => {
            const token = JSON.parse(document.body.getAttribute("hx-headers"))["X-CSRFToken"];
            const body = new URLSearchParams({proof});
            const response = await fetch(url, {method: "POST", body,
                headers: {"X-CSRFToken": token, "HX-Request": "true"}});
            return response.status;
        }""",
        [url, proof],
    ))  # fmt: skip


def test_production__qa__sees_the_rule_is_refused_a_customer_and_links_their_own(
    live_server: Any, page: Any
) -> None:
    seed = live_server.run(_seed)

    # Given an admin marks the environment as production on its page
    _login(page, live_server, "admin@example.com")
    page.goto(f"{live_server.url}/environments/{seed['production']}")
    page.check("#setting-production")
    page.click("#save-settings")
    expect(page.locator("#production-badge")).to_be_visible()
    screenshot(page, "environment-settings-production")
    _logout(page)

    # When the QA user opens a customer's page
    _login(page, live_server, QA_EMAIL)
    customer = _identity(live_server, seed["production"], seed["customer"])
    page.goto(customer)
    # Then the rule is stated before they try, and "This is me" is not offered
    expect(page.locator("#link-rule")).to_contain_text(
        f"Production environment: you can link only identities whose identifier is {QA_EMAIL}"
    )
    expect(page.locator("#link-refused")).to_be_visible()
    expect(page.locator("#this-is-me")).to_have_count(0)
    screenshot(page, "identity-production-customer-qa")
    # And sending the request anyway is refused, linking nothing
    assert _post_link_anyway(page, customer + "/link", "bob@acme.test") == 403
    page.reload()
    expect(page.locator("#identity-linked-users")).to_contain_text("none")

    # When they open their own identity (identifier = their email, in another case)
    page.goto(_identity(live_server, seed["production"], seed["own"]))
    expect(page.locator("#link-rule")).to_contain_text("Production environment")
    page.fill("#link-proof", "QA@example.com")
    page.click("#this-is-me")
    # Then it is linked to them and they may change it
    expect(page.locator(".badge-me")).to_have_text("This is you")
    page.click("#flag-dark_mode button.toggle-override")
    page.wait_for_selector("#flag-dark_mode.source-override")
    expect(page.locator("#flag-dark_mode td.effective-enabled")).to_have_text("on")
    screenshot(page, "identity-production-own-qa")

    # And My identities states the rule too
    page.goto(f"{live_server.url}/environments/{seed['production']}/my-identities")
    expect(page.locator("#link-rule")).to_contain_text(QA_EMAIL)
    expect(page.locator("#my-identities-table")).to_contain_text("QA@example.com")
    screenshot(page, "my-identities-production-qa")
    # And alice, linked before the environment became production, is read-only for them now
    page.locator("#my-identities-table a", has_text="alice@acme.test").click()
    expect(page.locator("#link-read-only")).to_contain_text("no longer lets you change")
    expect(page.locator("button.toggle-override")).to_have_count(0)
    screenshot(page, "identity-production-read-only-link-qa")


def test_not_production__qa__links_any_identity(live_server: Any, page: Any) -> None:
    seed = live_server.run(_seed)
    # Given a QA user on a test account's page in a non-production environment
    _login(page, live_server, QA_EMAIL)
    page.goto(_identity(live_server, seed["staging"], seed["tester"]))
    expect(page.locator("#link-rule")).to_contain_text("any identity here")
    # When they type its identifier and press "This is me"
    page.fill("#link-proof", "checkout-tester-7")
    page.click("#this-is-me")
    # Then it is theirs to change
    expect(page.locator(".badge-me")).to_have_text("This is you")
    expect(page.locator("#identity-linked-users")).to_contain_text(QA_EMAIL)
    screenshot(page, "identity-staging-linked-qa")
