"""Toasts stay long enough to be read: never on a timer while pointed at or focused.

An error stays until dismissed, a toast with an action (Undo) for a minute, others for 20 s;
the clock is Playwright's, so the test does not wait. Not about the database.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

SHOW = """([level, message, withAction]) => {
  let action = null;
  if (withAction) { action = document.createElement("button"); action.textContent = "Undo"; }
  window.flagpostToast(level, message, action);
}"""


@pytest.fixture
def toast_page(page, live_server):
    page.clock.install()
    page.goto(live_server.url + "/login")
    return page


def _show(page, level: str, message: str, with_action: bool = False) -> None:
    page.evaluate(SHOW, [level, message, with_action])


def test_toast__plain__stays_20s_then_leaves(toast_page) -> None:
    _show(toast_page, "success", "Saved.")
    toast = toast_page.locator(".toast", has_text="Saved.")
    toast_page.clock.run_for(15_000)
    expect(toast).to_be_visible()
    toast_page.clock.run_for(6_000)
    expect(toast).to_have_count(0)


def test_toast__with_undo__stays_past_the_old_8s_for_a_minute(toast_page) -> None:
    _show(toast_page, "info", "Override saved.", with_action=True)
    toast = toast_page.locator(".toast", has_text="Override saved.")
    toast_page.clock.run_for(45_000)
    expect(toast).to_be_visible()
    toast_page.clock.run_for(16_000)
    expect(toast).to_have_count(0)


def test_toast__pointed_at__never_leaves_while_read(toast_page) -> None:
    _show(toast_page, "success", "Saved.")
    toast = toast_page.locator(".toast", has_text="Saved.")
    toast.hover()
    toast_page.clock.run_for(120_000)
    expect(toast).to_be_visible()
    # Once the pointer leaves, the 20 s start again
    toast_page.mouse.move(5, 5)
    toast_page.clock.run_for(21_000)
    expect(toast).to_have_count(0)


def test_toast__error__stays_until_dismissed(toast_page) -> None:
    _show(toast_page, "error", "Could not save.")
    toast = toast_page.locator(".toast", has_text="Could not save.")
    toast_page.clock.run_for(600_000)
    expect(toast).to_be_visible()
    toast.get_by_role("button", name="Dismiss").click()
    expect(toast).to_have_count(0)
