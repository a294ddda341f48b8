"""An experiment in Chromium: an editor starts it from the feature page, SDK traffic arrives
through the API (identify, then exposure and goal events), the page shows every variant's
numbers and a verdict, and the editor stops it."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import screenshot
from tests.factories import (
    identities_make_option,
    make_environment,
    make_feature,
    make_project,
    make_segment,
    make_user,
)
from webapp.services.experiments.event_buffer import app_buffer

pytestmark = pytest.mark.browser
SHOPPERS = 480


def _seed() -> dict:
    project = make_project("Shop")
    env = make_environment(project, "Production")
    make_user("editor@example.com", "editor", project)
    colour = make_feature(project, "checkout_button_colour", enabled=True, value="green",
                          type="MULTIVARIATE")  # fmt: skip
    identities_make_option(colour, "blue", 30.0)
    identities_make_option(colour, "orange", 30.0)
    make_segment(project, "Pro users")
    return {"env": env.id, "feature": colour.id, "key": env.client_key}


def _traffic(page, base: str, key: str) -> dict[str, int]:
    """Identify shoppers as an SDK does, then send the exposures and purchases it would."""
    headers = {"X-Environment-Key": key, "Content-Type": "application/json"}
    events, exposed = [], {}
    for n in range(SHOPPERS):
        identifier = f"shopper-{n}"
        response = page.request.post(f"{base}/api/v1/identities/", headers=headers,
                                     data=json.dumps({"identifier": identifier}))  # fmt: skip
        flag = next(f for f in response.json()["flags"]
                    if f["feature"]["name"] == "checkout_button_colour")  # fmt: skip
        assert flag["metadata"]["experiment"]["in_experiment"] is True
        variant = flag["variant"]
        exposed[variant] = exposed.get(variant, 0) + 1
        events.append({"event": "$flag_exposure", "feature_name": "checkout_button_colour",
                       "identifier": identifier, "value": variant})  # fmt: skip
        # Orange sells to one shopper in three, the others to one in ten.
        if n % (3 if flag["feature_state_value"] == "orange" else 10) == 0:
            events.append({"event": "purchase", "identifier": identifier, "value": "49.90"})
    response = page.request.post(f"{base}/api/v1/v1/events", headers=headers,
                                 data=json.dumps({"events": events}))  # fmt: skip
    assert response.status == 202
    return exposed


@pytest.mark.heavy(seconds=20)
def test_experiment__started_fed_and_stopped__in_the_browser(live_server, page):
    world = live_server.run(_seed)
    base = f"{live_server.url}/environments/{world['env']}"
    violations = []
    page.on("console", lambda message: violations.append(message.text)
            if "Content Security Policy" in message.text else None)  # fmt: skip
    page.goto(live_server.url + "/login")
    page.fill("input[name=email]", "editor@example.com")
    page.fill("input[name=password]", "password123")
    page.click("button[type=submit]")
    page.wait_for_selector("text=Your projects")
    # Given the feature page: its Experiments link leads to the start form
    page.goto(f"{base}/features/{world['feature']}")
    page.click("#feature-experiments")
    # A blank name is refused inline, the form kept
    page.fill("#goal_event", "purchase")
    page.click("#experiment-form button[type=submit]")
    expect(page.locator(".field-error")).to_contain_text("Give the experiment a name")
    expect(page.locator("#goal_event")).to_have_value("purchase")
    # When it is started with a name
    page.fill("#name", "Orange button sells more")
    page.click("#experiment-form button[type=submit]")
    expect(page.locator("h1")).to_contain_text("Orange button sells more")
    expect(page.locator("#verdict")).to_contain_text("Not enough data yet")
    # And SDK traffic arrives and is written
    exposed = _traffic(page, live_server.url, world["key"])
    stored = live_server.run(lambda: app_buffer().flush())
    assert stored.exposures == SHOPPERS
    page.reload()
    # Then every variant shows its numbers and the verdict names the winner
    for variant, count in exposed.items():
        row = page.locator(f'tr[data-variant="{variant}"]')
        expect(row.locator(".exposures")).to_have_text(f"{count:,}")
    expect(page.locator("#verdict")).to_contain_text("beats control")
    screenshot(page, "experiment")
    # And the editor stops it; the results stay
    page.click("#experiment-stop button")
    expect(page.locator("h1")).to_contain_text("stopped")
    expect(page.locator("#verdict")).to_contain_text("beats control")
    assert violations == []  # the pages work under the strict CSP
