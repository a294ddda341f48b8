"""Erasing in Chromium: an editor erases an identity from its page (the browser asks first),
lands on the Users page told the code the audit log now uses, and the audit log shows the
erasure by that code only; then erases a search result after its count is shown (issue 18)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import screenshot
from tests.web.identities.conftest import build_world

pytestmark = pytest.mark.browser


def _seed() -> dict[str, Any]:
    world = build_world()
    return {"env": world.environment.id, "alice": world.alice.id}


def _login(page: Any, live_server: Any, email: str) -> None:
    page.goto(live_server.url + "/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", "password123")
    page.click("button[type=submit]")
    page.wait_for_selector("text=Your projects")


def test_erase__from_identity_page_and_bulk__confirmed_then_gone_and_audited_by_code(
    live_server: Any, page: Any
) -> None:
    seed = live_server.run(_seed)
    env_url = f"{live_server.url}/environments/{seed['env']}"
    _login(page, live_server, "editor@example.com")
    # Given alice's page; the first confirmation is dismissed, so nothing happens
    page.goto(f"{env_url}/identities/{seed['alice']}")
    questions: list[str] = []
    page.once("dialog", lambda dialog: (questions.append(dialog.message), dialog.dismiss()))
    page.click("#erase-identity")
    expect(page.locator("#identity-identifier")).to_have_text("alice@acme.test")
    assert "This cannot be undone" in questions[0]
    # When the editor confirms
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#erase-identity")
    # Then they are on the Users page, told the code; alice is not listed any more
    message = page.locator("text=/Identity erased\\. The audit log now calls it erased:/")
    expect(message).to_be_visible()
    token = re.search(r"erased:[0-9a-f]{16}", message.inner_text()).group(0)
    expect(page.locator("#users-results")).not_to_contain_text("alice@acme.test")
    screenshot(page, "erase-identity-done")
    # ... and the audit log names the erasure by the code
    page.goto(f"{env_url}/audit")
    expect(page.locator("#audit-table")).to_contain_text(f"erased identity {token}")
    expect(page.locator("#audit-table")).not_to_contain_text("alice@acme.test")
    # When the editor erases every identity matching a search, after seeing the count
    page.goto(f"{env_url}/users?q=plan+%3D+pro")
    page.select_option("#bulk-panel select[name=action]", "erase")
    page.click("#bulk-preview")
    expect(page.locator("#bulk-count")).to_contain_text("This affects 1 identity")
    page.once("dialog", lambda dialog: (questions.append(dialog.message), dialog.accept()))
    page.click("#bulk-confirm")
    # Then the confirmation named the count, and bob is gone (the results refresh)
    expect(page.locator("#users-results")).to_contain_text("No identities found.")
    assert "1 identity. This cannot be undone." in questions[-1]
    page.goto(f"{env_url}/users")
    expect(page.locator("#users-results")).not_to_contain_text("bob@acme.test")


def test_bulk_erase__ticked_row__only_that_identity_is_erased(live_server: Any, page: Any) -> None:
    seed = live_server.run(_seed)
    env_url = f"{live_server.url}/environments/{seed['env']}"
    _login(page, live_server, "editor@example.com")
    # Given the Users page with alice ticked
    page.goto(f"{env_url}/users")
    page.check(f"#select-{seed['alice']}")
    # When the editor counts, then confirms, an erasure
    page.select_option("#bulk-panel select[name=action]", "erase")
    page.click("#bulk-preview")
    expect(page.locator("#bulk-count")).to_contain_text(
        "This affects 1 identity of the 1 selected row"
    )
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#bulk-confirm")
    # Then alice is gone and bob is still listed (the results refresh)
    expect(page.locator("#users-results")).not_to_contain_text("alice@acme.test")
    page.goto(f"{env_url}/users")
    expect(page.locator("#users-results")).to_contain_text("bob@acme.test")
    expect(page.locator("#users-results")).not_to_contain_text("alice@acme.test")
