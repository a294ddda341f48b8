"""Live pages in Chromium: two sessions on one Identity page; a change in one appears in the
other without a reload, with a quiet notice; an open editor is never overwritten."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import LiveServer
from tests.conftest import dispose_engines, make_test_app
from tests.realtime.conftest import free_port, serve_streams
from tests.web.identities.conftest import build_world
from webapp.extensions import db
from webapp.realtime import StreamSettings

pytestmark = pytest.mark.browser


@pytest.fixture
def live_pages(live_http, tmp_path) -> Iterator[LiveServer]:
    """The dashboard (CSRF on) behind the session's HTTP server, and its stream server."""
    front, url = live_http
    port = free_port()
    app = make_test_app(
        f"sqlite:///{tmp_path / 'live.sqlite'}",
        WTF_CSRF_ENABLED=True,
        STREAM_URL=f"http://127.0.0.1:{port}/",
    )
    with app.app_context():
        db.create_all()
    front.app = app
    try:
        with serve_streams(StreamSettings.from_config(app.config), port):
            yield LiveServer(app, url)
    finally:
        front.app = None
        dispose_engines(app)


@pytest.fixture
def two_pages(browser) -> Iterator[tuple[Any, Any]]:
    contexts = [browser.new_context(viewport={"width": 1280, "height": 900}) for _ in range(2)]
    tabs = [context.new_page() for context in contexts]
    for tab in tabs:
        tab.set_default_timeout(10_000)
    yield tabs[0], tabs[1]
    for context in contexts:
        context.close()


def _seed() -> dict[str, Any]:
    world = build_world()
    return {"environment_id": world.environment.id, "alice_id": world.alice.id}


def _open_identity(page, server, seed, email) -> None:
    page.goto(server.url + "/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", "password123")
    page.click("button[type=submit]")
    page.wait_for_selector("text=Your projects")
    page.goto(f"{server.url}/environments/{seed['environment_id']}/identities/{seed['alice_id']}")
    # The page's stream is open once the extension reports it (htmx:sseOpen).
    page.wait_for_function("document.querySelector('#live') !== null")


def _wait_stream_open(page) -> None:
    page.evaluate(
        """() => new Promise(resolve => {
            const live = document.getElementById('live');
            const source = htmx.find('#live') && live['htmx-internal-data'].sseEventSource;
            if (source && source.readyState === 1) { resolve(); return; }
            live.addEventListener('htmx:sseOpen', () => resolve(), {once: true});
        })"""
    )


def test_identity_page__change_in_one_session__appears_in_the_other_without_reload(
    live_pages, two_pages
):
    seed = live_pages.run(_seed)
    watcher, changer = two_pages
    # Given two people on alice's Identity page
    _open_identity(watcher, live_pages, seed, "editor@example.com")
    _open_identity(changer, live_pages, seed, "admin@example.com")
    _wait_stream_open(watcher)
    watched_row = watcher.locator("#flag-dark_mode")
    expect(watched_row.locator(".override-state")).to_contain_text("inherited")
    # When one of them overrides dark_mode for alice
    changer.locator("#flag-dark_mode button.toggle-override").click()
    expect(changer.locator("#flag-dark_mode .override-state")).not_to_contain_text("inherited")
    # Then the other's page shows the override without a reload, and says who changed it
    expect(watched_row.locator(".override-state")).not_to_contain_text("inherited")
    expect(watcher.locator("#live-notice")).to_be_visible()
    expect(watcher.locator("#live-notice")).to_contain_text("admin@example.com changed")
    # and the one who changed it gets no notice about their own change
    expect(changer.locator("#live-notice")).to_be_hidden()


def test_identity_page__open_editor__is_kept_and_says_the_object_changed(live_pages, two_pages):
    seed = live_pages.run(_seed)
    watcher, changer = two_pages
    _open_identity(watcher, live_pages, seed, "editor@example.com")
    _open_identity(changer, live_pages, seed, "admin@example.com")
    _wait_stream_open(watcher)
    # Given the watcher editing dark_mode's override value
    watcher.locator("#flag-dark_mode button.edit-override").click()
    editor = watcher.locator("#flag-dark_mode[data-live-editor]")
    expect(editor).to_be_visible()
    editor.locator("input[name=value], textarea[name=value]").first.fill("typed, not saved")
    # When someone else changes the identity's flags
    changer.locator("#flag-dark_mode button.toggle-override").click()
    expect(changer.locator("#flag-dark_mode .override-state")).not_to_contain_text("inherited")
    # Then the open editor keeps what was typed and says the object changed
    expect(editor.locator(".live-stale")).to_contain_text("admin@example.com changed this")
    expect(editor.locator("input[name=value], textarea[name=value]").first).to_have_value(
        "typed, not saved"
    )
