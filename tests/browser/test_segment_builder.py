"""Building a segment in a real browser, overriding a feature for it, checking the SDK API."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import screenshot
from tests.factories import make_environment, make_feature, make_identity, make_project, make_user

pytestmark = pytest.mark.browser


def _seed():
    project = make_project("Demo")
    env = make_environment(project, "Production")
    make_user("editor@example.com", "editor", project)
    make_feature(project, "banner", enabled=False, value="off")
    make_identity(env, "alice", {"plan": "pro", "country": "DE"})
    make_identity(env, "bob", {"plan": "free", "country": "FR"})
    make_identity(env, "carol", {"plan": "pro", "country": "US"})
    return env.id, env.client_key


def _banner(page, base, key, identifier):
    response = page.request.post(
        f"{base}/api/v1/identities/",
        headers={"X-Environment-Key": key, "Content-Type": "application/json"},
        data={"identifier": identifier},
    )
    assert response.ok
    flags = {f["feature"]["name"]: f for f in response.json()["flags"]}
    return flags["banner"]["enabled"], flags["banner"]["feature_state_value"]


def _condition(page, gi):
    return f"#condition-{gi}-0"


def test_segment_builder__plan_pro_and_country_in__override_reaches_sdk(live_server, page):
    # Given an editor, a feature and three identities
    env_id, key = live_server.run(_seed)
    base = live_server.url
    page.goto(f"{base}/login")
    page.fill("input[name=email]", "editor@example.com")
    page.fill("input[name=password]", "password123")
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")
    # When building plan = pro in the first group
    page.goto(f"{base}/environments/{env_id}/segments/new")
    page.fill("input[name=name]", "Pro in EU")
    page.fill("input[name='groups-0-conditions-0-property_']", "plan")
    page.fill("input[name='groups-0-conditions-0-value']", "pro")
    # Then the preview counts alice and carol
    # (expect() polls through the selector engine: the page's CSP forbids eval'd predicates)
    expect(page.locator("#preview-count")).to_have_text("2")
    # When adding a group with country IN DE,FR (htmx, no reload)
    page.click("#add-group")
    page.wait_for_selector("#group-1")
    page.fill("input[name='groups-1-conditions-0-property_']", "country")
    page.select_option("select[name='groups-1-conditions-0-operator']", "IN")
    page.wait_for_selector("#chips-1-0", state="attached")  # the builder re-rendered an IN input
    page.fill("input[name='groups-1-conditions-0-value']", "DE,FR")
    # Then the preview count drops to alice alone
    expect(page.locator("#preview-count")).to_have_text("1")
    screenshot(page, "segment-builder")
    # When saving and adding an override of banner on the Overrides tab
    page.click("#save-segment")
    page.wait_for_selector("#segment-name")
    page.click("#tab-overrides")
    page.wait_for_selector("#new-override")
    page.check("#new-override-enabled")
    page.select_option("#new-override-type", "string")
    page.fill("#new-override-value", "on")
    page.click("#new-override-save")
    page.wait_for_selector("#override-banner")
    screenshot(page, "segment-overrides")
    # Then the SDK API gives alice the override and bob the default
    assert _banner(page, base, key, "alice") == (True, "on")
    assert _banner(page, base, key, "bob") == (False, "off")
    assert _banner(page, base, key, "carol") == (False, "off")
