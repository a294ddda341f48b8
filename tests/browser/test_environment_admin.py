"""Projects and keys in Chromium: the copy buttons work under the strict CSP, and the new
pages fit a phone (390 px) with names at their limits and 30 environments."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import screenshot
from tests.factories import (
    identities_make_segment_override,
    make_environment,
    make_feature,
    make_identity,
    make_project,
    make_segment,
    make_user,
)
from webapp.extensions import db

pytestmark = pytest.mark.browser

EMAIL = "admin@example.com"
LONG = "N" * 200


def _seed() -> dict[str, int]:
    project = make_project(("Project_" + "p" * 200)[:200])
    env = make_environment(project, ("Environment_" + "e" * 200)[:200], production=True)
    other = make_environment(project, "Staging")
    for n in range(28):
        make_environment(project, f"Environment {n:02d} " + "x" * 40)
    make_user(EMAIL, "admin", project)
    banner = make_feature(project, "banner_" + "b" * 140, enabled=True, value="v" * 300)
    make_feature(project, "quiet", enabled=False, value=1)
    segment = make_segment(project, "Segment " + "s" * 190)
    identities_make_segment_override(segment, banner, env, value="o" * 300, priority=1)
    make_identity(env, "alice")
    empty = make_project("Empty project")
    make_user("lonely@example.com", "admin", empty)
    db.session.commit()
    return {"project": project.id, "env": env.id, "other": other.id, "empty": empty.id}


def _login(page: Any, base: str, email: str = EMAIL) -> None:
    page.goto(base + "/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", "password123")
    page.click("button[type=submit]")
    expect(page.locator("text=Your projects")).to_be_visible()


def _fits(page: Any) -> bool:
    return bool(page.evaluate(
        "() => document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    ))  # fmt: skip


def test_keys__copy_buttons__copy_under_the_csp(live_server, browser):
    ids = live_server.run(_seed)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    page = context.new_page()
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text)
            if "Content Security Policy" in m.text else None)  # fmt: skip
    try:
        _login(page, live_server.url)
        page.goto(f"{live_server.url}/environments/{ids['env']}")
        # When the admin copies the client key
        page.click("#copy-client-key")
        expect(page.locator("#copy-client-key")).to_have_text("Copied")
        key = page.locator("#client-key").inner_text()
        assert page.evaluate("() => navigator.clipboard.readText()") == key
        # and creates a server key: shown once with its own copy button
        page.fill("#name", "backend")
        page.click("text=Create server key")
        expect(page.locator("#new-server-key")).to_be_visible()
        page.click("#copy-new-server-key")
        expect(page.locator("#copy-new-server-key")).to_have_text("Copied")
        secret = page.locator("#new-server-key-value").inner_text()
        assert secret.startswith("ser.")
        assert page.evaluate("() => navigator.clipboard.readText()") == secret
        screenshot(page, "envadmin-keys")
        page.reload()
        expect(page.locator("#new-server-key")).to_have_count(0)
        assert secret not in page.content()
        assert violations == []
    finally:
        context.close()


@pytest.mark.parametrize("width", [390, 1400])
def test_new_pages__long_names_and_30_environments__fit_the_window(live_server, browser, width):
    ids = live_server.run(_seed)
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    try:
        _login(page, live_server.url)
        pages = {
            "project": f"/projects/{ids['project']}",
            "compare": f"/projects/{ids['project']}/compare?left={ids['env']}&right={ids['other']}",
            "compare-empty": f"/projects/{ids['project']}/compare",
            "delete-environment": f"/environments/{ids['env']}/delete",
            "delete-project": f"/projects/{ids['project']}/delete",
            "clone": f"/environments/{ids['env']}/clone",
            "new-project": "/projects/new",
            "environment": f"/environments/{ids['env']}",
        }
        wide = []
        for name, path in pages.items():
            page.goto(live_server.url + path)
            screenshot(page, f"envadmin-{name}-{width}")
            if not _fits(page):
                wide.append(name)
        assert wide == [], f"pages wider than {width}px: {wide}"
    finally:
        context.close()


def test_project_page__no_environments__says_how_to_start(live_server, browser):
    ids = live_server.run(_seed)
    context = browser.new_context(viewport={"width": 390, "height": 900})
    page = context.new_page()
    try:
        _login(page, live_server.url, "lonely@example.com")
        page.goto(f"{live_server.url}/projects/{ids['empty']}")
        expect(page.locator("#no-environments")).to_be_visible()
        screenshot(page, "envadmin-project-empty-390")
    finally:
        context.close()
