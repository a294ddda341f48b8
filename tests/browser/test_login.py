"""Logging in through a real browser."""

import pytest

from tests.browser.conftest import screenshot
from tests.factories import make_environment, make_project, make_user

pytestmark = pytest.mark.browser


def _seed():
    project = make_project("Demo")
    make_environment(project, "Development")
    make_environment(project, "Production")
    make_user("admin@example.com", "admin", project)


def test_login__admin__sees_the_projects_environments(live_server, page):
    live_server.run(_seed)
    page.goto(live_server.url + "/")
    assert "/login" in page.url
    page.fill("input[name=email]", "admin@example.com")
    page.fill("input[name=password]", "password123")
    page.click("button[type=submit]")
    page.wait_for_selector("text=Your projects")
    rows = page.locator("tr[id^=environment-] td:first-child").all_inner_texts()
    assert rows == ["Development", "Production"]
    screenshot(page, "dashboard-home")


def test_login__wrong_password__shows_inline_error(live_server, page):
    live_server.run(_seed)
    page.goto(live_server.url + "/login")
    page.fill("input[name=email]", "admin@example.com")
    page.fill("input[name=password]", "not-the-password")
    page.click("button[type=submit]")
    error = page.locator(".form-error")
    error.wait_for()
    assert error.inner_text() == "Invalid email or password."
    assert "/login" in page.url


def test_logout__returns_to_login(live_server, page):
    live_server.run(_seed)
    page.goto(live_server.url + "/login")
    page.fill("input[name=email]", "admin@example.com")
    page.fill("input[name=password]", "password123")
    page.click("button[type=submit]")
    page.wait_for_selector("text=Your projects")
    page.click("text=Log out")
    page.wait_for_selector("#login")
    page.goto(live_server.url + "/")
    assert "/login" in page.url
