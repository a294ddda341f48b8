"""Editing a multivariate option's value in Chromium: swapped in place, buckets kept."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import screenshot
from tests.conftest import eventually
from tests.factories import (
    identities_make_option,
    make_environment,
    make_feature,
    make_project,
    make_user,
)

pytestmark = pytest.mark.browser
PEOPLE = [f"person-{n}" for n in range(40)]


def _seed() -> dict:
    project = make_project("Demo")
    env = make_environment(project, "Production")
    make_user("editor@example.com", "editor", project)
    colour = make_feature(project, "button_colour", enabled=True, value="green",
                          type="MULTIVARIATE")  # fmt: skip
    blue = identities_make_option(colour, "blue", 50.0)
    return {"env": env.id, "feature": colour.id, "option": blue.id, "key": env.client_key}


def _colour(page, base: str, key: str, person: str) -> str:
    response = page.request.post(
        f"{base}/api/v1/identities/",
        headers={"X-Environment-Key": key, "Content-Type": "application/json"},
        data=json.dumps({"identifier": person, "transient": True}),
    )
    assert response.status == 200
    flags = {f["feature"]["name"]: f for f in response.json()["flags"]}
    return flags["button_colour"]["feature_state_value"]


def _colours(page, base: str, key: str) -> dict[str, str]:
    return {person: _colour(page, base, key, person) for person in PEOPLE}


def test_option_value__edited_in_place__identities_keep_their_bucket(live_server, page):
    # Given a multivariate flag where about half of the identities get "blue"
    seed = live_server.run(_seed)
    base = live_server.url
    before = _colours(page, base, seed["key"])
    assert set(before.values()) == {"blue", "green"}
    page.goto(base + "/login")
    page.fill("input[name=email]", "editor@example.com")
    page.fill("input[name=password]", "password123")
    page.click("button[type=submit]")
    expect(page.locator("text=Your projects")).to_be_visible()
    page.goto(f"{base}/environments/{seed['env']}/features/{seed['feature']}")
    # When the editor renames blue to navy
    page.click(f"#edit-option-{seed['option']}")
    expect(page.locator("#option-edit-form")).to_be_visible()
    page.fill("#option-edit-value", "navy")
    screenshot(page, "feature-option-edit")
    page.click("#save-option")
    # Then the card shows navy without a reload, and every blue identity now gets navy
    expect(page.locator("#option-edit-form")).to_have_count(0)
    expect(page.locator(f"#option-{seed['option']}")).to_contain_text("navy")
    # once the worker's snapshot has seen the new revision (it re-checks every 0.5 s)
    blue = next(person for person, colour in before.items() if colour == "blue")
    eventually(lambda: _colour(page, base, seed["key"], blue) == "navy", seconds=5)
    after = _colours(page, base, seed["key"])
    assert after == {p: "navy" if v == "blue" else v for p, v in before.items()}
