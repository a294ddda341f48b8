"""The Identity page in a real browser: QA finds their identity, overrides, undoes, edits traits."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import screenshot
from tests.web.identities.conftest import build_world

pytestmark = pytest.mark.browser



def _seed() -> dict[str, Any]:
    world = build_world()
    return {
        "environment_id": world.environment.id,
        "alice_id": world.alice.id,
        "bob_id": world.bob.id,
        "alice": world.alice.identifier,
        "client_key": world.environment.client_key,
    }


def _login(page, live_server, email: str) -> None:
    page.goto(live_server.url + "/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", "password123")
    page.click("button[type=submit]")
    page.wait_for_selector("text=Your projects")


def _detail_url(live_server, seed) -> str:
    return f"{live_server.url}/environments/{seed['environment_id']}/identities/{seed['alice_id']}"


def _find_by_trait_search(page, live_server, seed) -> None:
    page.goto(f"{live_server.url}/environments/{seed['environment_id']}/users")
    page.fill("#user-search", "plan = free")
    # bob (plan = pro) leaves the results once the debounced search has run
    page.locator(f"#users-table tr#identity-{seed['bob_id']}").wait_for(state="detached")
    row = page.locator(f"#users-table tr#identity-{seed['alice_id']}")
    row.wait_for()
    assert page.locator("#users-table tbody tr[id^=identity-]").count() == 1
    # the total loads by its own request once the rows are shown
    expect(page.locator("#users-count")).to_contain_text("1 identity match")
    screenshot(page, "users-page-trait-search")
    row.locator("a.identity-link").click()
    page.wait_for_selector("#flags-table")


def _sdk_flag(page, live_server, seed, name: str) -> dict[str, Any]:
    response = page.request.get(
        f"{live_server.url}/api/v1/identities/?identifier={seed['alice']}",
        headers={"X-Environment-Key": seed["client_key"]},
    )
    assert response.ok
    return next(f for f in response.json()["flags"] if f["feature"]["name"] == name)


def _cell(page, name: str, cls: str):
    return page.locator(f"#flag-{name} td.{cls}")


def test_users_search__qa__finds_own_identity_by_trait(live_server, page):
    # Given a QA user whose identity has plan = free
    seed = live_server.run(_seed)
    _login(page, live_server, "qa@example.com")
    # When they search the Users page by trait and open the result
    _find_by_trait_search(page, live_server, seed)
    # Then they land on their Identity page
    assert page.url == _detail_url(live_server, seed)
    assert page.locator("#identity-identifier").inner_text() == seed["alice"]


def test_identity_page__qa__overrides_undoes_and_edits_traits_in_place(live_server, page):
    # Given the QA user and their linked identity (plan = free)
    seed = live_server.run(_seed)
    _login(page, live_server, "qa@example.com")
    _find_by_trait_search(page, live_server, seed)
    page.wait_for_selector("#flags-table")
    page.evaluate("window.__noFullReload = 'still here'")
    assert _cell(page, "dark_mode", "effective-enabled").inner_text() == "off"
    assert _cell(page, "dark_mode", "source").inner_text().strip() == "default"

    # When they toggle dark_mode
    page.click("#flag-dark_mode button.toggle-override")
    # Then the row shows the override without a full reload
    page.wait_for_selector("#flag-dark_mode.source-override")
    assert _cell(page, "dark_mode", "effective-enabled").inner_text() == "on"
    assert _cell(page, "dark_mode", "source").inner_text().strip() == "identity override"
    assert page.evaluate("window.__noFullReload") == "still here"
    # And the SDK serves it
    assert _sdk_flag(page, live_server, seed, "dark_mode")["enabled"] is True
    screenshot(page, "identity-page-override")

    # When they press Undo in the toast
    page.click(".toast button.undo-override")
    # Then the flag is inherited again, in place, and the SDK agrees
    page.wait_for_selector("#flag-dark_mode.source-default")
    assert _cell(page, "dark_mode", "effective-enabled").inner_text() == "off"
    assert _sdk_flag(page, live_server, seed, "dark_mode")["enabled"] is False
    assert page.evaluate("window.__noFullReload") == "still here"

    # When they add plan = pro, which enters the "Pro users" segment
    assert "Pro users" not in page.locator("#identity-segments").inner_text()
    page.fill("#trait-add-key", "plan")
    page.fill("#trait-add-value", "pro")
    page.click("#trait-add-submit")
    # Then the segment-driven flag changes in place, and the page says which flag changed
    page.wait_for_selector("#flag-max_upload_mb.source-segment")
    assert _cell(page, "max_upload_mb", "effective-value").inner_text().startswith("250")
    assert "Pro users" in _cell(page, "max_upload_mb", "source").inner_text()
    expect(page.locator("#identity-segments")).to_contain_text("Pro users")
    assert "max_upload_mb" in page.locator("#trait-impact").inner_text()
    assert page.locator("#trait-plan td.trait-value").inner_text() == "“pro”"  # a string, quoted
    assert _sdk_flag(page, live_server, seed, "max_upload_mb")["feature_state_value"] == 250
    assert page.evaluate("window.__noFullReload") == "still here"

    # And the why panel explains it
    page.click("#flag-max_upload_mb button.why")
    page.wait_for_selector("#why-max_upload_mb")
    assert "Pro users" in page.locator("#why-max_upload_mb").inner_text()
    screenshot(page, "identity-page")
    page.click("#flag-dark_mode button.why")  # the panel stays usable for the next flag
    expect(page.locator("#flag-dark_mode + tr.why-row #why-dark_mode")).to_be_visible()

    # When they delete the age trait (confirming the dialog), its row goes in place
    page.on("dialog", lambda dialog: dialog.accept())
    page.click("#trait-age button.delete-trait")
    page.locator("#trait-age").wait_for(state="detached")
    assert "age" in page.locator("#trait-impact").inner_text()
    assert page.evaluate("window.__noFullReload") == "still here"


def test_identity_page__viewer__sees_no_edit_controls(live_server, page):
    seed = live_server.run(_seed)
    _login(page, live_server, "viewer@example.com")
    page.goto(_detail_url(live_server, seed))
    page.wait_for_selector("#flags-table")
    for selector in (
        "button.toggle-override",
        "button.edit-override",
        "select.choose-option",
        "#trait-add-form",
        "button.edit-trait",
        "button.delete-trait",
        "#override-expiry",
        "#this-is-me",
        "#reset-my-overrides",
    ):
        assert page.locator(selector).count() == 0, selector
    assert page.locator("#flags-table tbody tr.flag-row").count() == 4
    screenshot(page, "identity-page-viewer")
