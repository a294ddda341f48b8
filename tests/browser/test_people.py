"""People in a real browser: invite a colleague, who joins with the granted role only; then
disable them, and their open session stops on its next request."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import screenshot
from tests.factories import make_environment, make_project, make_user
from webapp.extensions import db

pytestmark = pytest.mark.browser

PASSWORD = "password123"
NEW_PASSWORD = "a long fresh passphrase"
LONG_EMAIL = "x" * 50 + "." + "y" * 50 + "@" + "z" * 40 + ".example.com"


def _seed() -> dict[str, int]:
    demo, other = make_project("Demo"), make_project("Other")
    make_environment(demo, "Development")
    make_environment(other, "Production")
    make_user("root@example.com", "admin", all_projects=True)
    db.session.flush()
    return {"demo": demo.id, "other": other.id}


def _log_in(page: Any, url: str, email: str, password: str = PASSWORD) -> None:
    page.goto(url + "/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_selector("text=Your projects")


def test_invite_accept_disable__colleague_sees_granted_project_then_is_logged_out(
    live_server: Any, page: Any, browser: Any
) -> None:
    from playwright.sync_api import expect

    ids = live_server.run(_seed)
    url = live_server.url

    # Given an organisation admin on the people page
    _log_in(page, url, "root@example.com")
    page.click("nav.mainnav >> text=People")
    expect(page.locator("#people-table")).to_be_visible()
    screenshot(page, "people-empty")

    # When they invite a colleague as a viewer of Demo and copy the link
    page.fill("#invite-form input[name=email]", "colleague@example.com")
    page.select_option(f"select[name=role_{ids['demo']}]", "viewer")
    page.click("#invite-form button[type=submit]")
    link_input = page.locator("#link-url")
    expect(link_input).to_be_visible()
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.click("#copy-link")
    expect(page.locator(".toast")).to_contain_text("Link copied.")
    link = link_input.input_value()
    assert "/invitation/" in link
    assert page.evaluate("() => navigator.clipboard.readText()") == link
    screenshot(page, "people-invitation-link")

    # Then the colleague opens it in their own browser, sets a password and is logged in
    colleague_context = browser.new_context(viewport={"width": 390, "height": 844})
    colleague = colleague_context.new_page()
    colleague.set_default_timeout(10_000)
    try:
        colleague.goto(link)
        expect(colleague.locator("#set-password")).to_contain_text("colleague@example.com")
        screenshot(colleague, "people-accept-phone")
        colleague.fill("input[name=password]", NEW_PASSWORD)
        colleague.fill("input[name=confirm]", NEW_PASSWORD)
        colleague.click("#set-password button[type=submit]")
        expect(colleague.locator("h1")).to_have_text("Your projects")
        # ... seeing only the project granted, with the viewer role
        expect(colleague.locator(f"#project-{ids['demo']}")).to_be_visible()
        expect(colleague.locator(f"#project-{ids['other']}")).to_have_count(0)
        expect(colleague.locator(".who")).to_contain_text("viewer")
        expect(colleague.locator("nav.mainnav >> text=People")).to_have_count(0)
        environment_link = colleague.locator(f"#project-{ids['demo']} a").first
        environment_link.click()
        expect(colleague.locator("nav.mainnav >> text=Features")).to_be_visible()

        # When the admin disables them
        page.goto(url + "/people")
        page.click("text=colleague@example.com")
        page.once("dialog", lambda dialog: dialog.accept())
        page.click("#disable-account")
        expect(page.locator(".flash")).to_contain_text("colleague@example.com is disabled.")
        screenshot(page, "people-disabled")

        # Then the colleague's open session ends on its next request
        colleague.click("nav.mainnav >> text=Features")
        expect(colleague.locator("#login")).to_be_visible()
        assert "/login" in colleague.url
    finally:
        colleague_context.close()


def test_people_page__thirty_rows_long_emails__fit_desktop_and_phone(
    live_server: Any, page: Any
) -> None:
    def seed() -> None:
        _seed()
        demo = make_project("A project with a rather long name for the role column")
        for n in range(30):
            make_user(f"person{n:02d}@example.com", ("viewer", "qa", "editor")[n % 3], demo)
        make_user(LONG_EMAIL, "editor", demo)

    live_server.run(seed)
    _log_in(page, live_server.url, "root@example.com")
    page.goto(live_server.url + "/people")
    assert page.locator("tr.person").count() == 32
    screenshot(page, "people-30-rows")
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        if width == 390:
            path = screenshot(page, "people-phone")
            page.screenshot(path=str(path.with_name("people-phone-top.png")))
            page.locator(f"text={LONG_EMAIL}").scroll_into_view_if_needed()
            page.screenshot(path=str(path.with_name("people-phone-long-email.png")))
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        wide = page.evaluate(
            "[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right"
            " > document.documentElement.clientWidth + 1).slice(0, 5).map(e => e.tagName + '.' +"
            " e.className + '#' + e.id)"
        )
        assert overflow <= 0, f"{wide}: scrolls sideways at {width}px ({overflow}px)"
    page.click(f"text={LONG_EMAIL}")
    # The click only waits for the navigation to commit: measure once the detail page and
    # its stylesheets have loaded (measured unstyled, the long email overflows by 2,000 px).
    page.wait_for_url("**/people/*")
    page.wait_for_load_state("load")
    assert page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    ) <= 0
    screenshot(page, "people-detail-phone")
