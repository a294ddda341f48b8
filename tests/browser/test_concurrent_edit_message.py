"""A stale edit in a real browser: htmx swaps the 409 and shows "changed since you opened it"."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from tests.browser.conftest import screenshot
from tests.web.identities.conftest import build_world
from webapp.clock import utcnow
from webapp.extensions import db
from webapp.models import Feature, Identity, User
from webapp.services.identities import identity_overrides

pytestmark = pytest.mark.browser


def _seed() -> dict[str, Any]:
    world = build_world()
    return {
        "environment_id": world.environment.id,
        "alice_id": world.alice.id,
        "dark_mode_id": world.features["dark_mode"].id,
    }


def _login(page: Any, live_server: Any, email: str) -> None:
    page.goto(live_server.url + "/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", "password123")
    page.click("button[type=submit]")
    page.wait_for_selector("text=Your projects")


def test_identity_page__toggle_from_stale_row__shows_changed_message_in_row(page, live_server):
    seed = live_server.run(_seed)
    # Given an editor with alice's Identity page open (dark_mode has no override yet)
    _login(page, live_server, "editor@example.com")
    page.goto(
        f"{live_server.url}/environments/{seed['environment_id']}/identities/{seed['alice_id']}"
    )
    row = page.locator("#flag-dark_mode")
    expect(row.locator(".override-state")).to_contain_text("inherited")

    # And another editor turns dark_mode on for alice meanwhile
    def toggle_elsewhere() -> None:
        admin = db.session.scalars(select(User).where(User.email == "admin@example.com")).one()
        identity = db.session.get(Identity, seed["alice_id"])
        feature = db.session.get(Feature, seed["dark_mode_id"])
        identity_overrides.toggle_override(admin, identity, feature, utcnow(), None, version=0)

    live_server.run(toggle_elsewhere)
    # When the editor toggles from the stale row
    row.locator("button.toggle-override").click()
    # Then the 409 row is swapped in: the saved override with the message, no toast only
    expect(page.locator("#flag-dark_mode [role=alert]")).to_contain_text(
        "This override has changed since you opened it; reload to see the saved version."
    )
    expect(page.locator("#flag-dark_mode .override-state")).not_to_contain_text("inherited")
    screenshot(page, "identity-stale-toggle-409")
