"""Playwright driving Debian's Chromium against a live server on a temp-file SQLite DB.

One HTTP server (one port, one thread) serves each test process's whole session; each test
gets a fresh app on its own database file behind it (``tests.live.Swappable``). Tests wait
on conditions (Playwright's ``expect`` on a locator, or ``tests.conftest.eventually``),
never on time. String predicates for ``page.wait_for_function`` are evaluated in the page,
which the strict Content-Security-Policy may refuse: use ``expect(locator)`` instead.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from tests.conftest import dispose_engines, make_test_app
from tests.live import Swappable, serve
from webapp.extensions import db

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).parent / "artifacts"
REQUIRE_BROWSER = os.environ.get("FLAGPOST_REQUIRE_BROWSER") == "1"
# Without the background-networking flags Chromium keeps trying to reach Google's hosts,
# which this closed network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _skip_or_fail(reason: str) -> None:
    if REQUIRE_BROWSER:
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """A headless Chromium, shared by the whole session."""
    if not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
        _skip_or_fail(f"browser tests need Chromium at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _skip_or_fail("browser tests need the playwright package (pip install -e '.[test]')")
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@dataclass
class LiveServer:
    app: Flask
    url: str

    def run(self, function: Callable[[], Any]) -> Any:
        """Run ``function`` in the server's app context (to prepare or inspect data)."""
        with self.app.app_context():
            result = function()
            db.session.commit()
            return result


@pytest.fixture(scope="session")
def live_http() -> Iterator[tuple[Swappable, str]]:
    """One HTTP server for the session (per xdist worker); the app behind it is swapped."""
    front = Swappable()
    with serve(front) as url:
        yield front, url


@pytest.fixture
def live_server(live_http: tuple[Swappable, str], tmp_path: Path) -> Iterator[LiveServer]:
    """Serve a fresh real app (CSRF on, its own temp-file database) for this test."""
    front, url = live_http
    app = make_test_app(f"sqlite:///{tmp_path / 'live.sqlite'}", WTF_CSRF_ENABLED=True)
    with app.app_context():
        db.create_all()
    front.app = app
    try:
        yield LiveServer(app, url)
    finally:
        front.app = None
        dispose_engines(app)


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    tab.set_default_timeout(10_000)
    yield tab
    context.close()


def screenshot(page: Any, name: str) -> Path:
    """Save a full-page screenshot as a CI artifact (tests/browser/artifacts/, git-ignored)."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
