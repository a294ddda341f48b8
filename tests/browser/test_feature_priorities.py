"""Reordering segment overrides in a real browser changes the winning value over the SDK API."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import screenshot
from tests.conftest import eventually
from tests.factories import (
    features_make_segment_override,
    make_environment,
    make_feature,
    make_identity,
    make_project,
    make_segment,
    make_user,
)

pytestmark = pytest.mark.browser


def _rule(prop: str, value: str) -> list[dict]:
    condition = {"property_": prop, "operator": "EQUAL", "value": value}
    return [{"type": "ALL", "rules": [], "conditions": [condition]}]


def _seed() -> dict:
    project = make_project("Demo")
    env = make_environment(project, "Production")
    make_user("editor@example.com", "editor", project)
    feature = make_feature(project, "banner", enabled=True, value="default")
    make_feature(project, "dark_mode", enabled=False)
    pro = make_segment(project, "Pro plan", _rule("plan", "pro"), position=0)
    germany = make_segment(project, "Germany", _rule("country", "DE"), position=1)
    features_make_segment_override(pro, feature, env, "from-pro", priority=0)
    features_make_segment_override(germany, feature, env, "from-germany", priority=1)
    make_identity(env, "carol", {"plan": "pro", "country": "DE"})
    return {"env": env.id, "feature": feature.id, "key": env.client_key}


def _banner_for_carol(page, base: str, key: str) -> str:
    response = page.request.post(
        f"{base}/api/v1/identities/",
        headers={"X-Environment-Key": key, "Content-Type": "application/json"},
        data=json.dumps({"identifier": "carol"}),
    )
    assert response.status == 200
    flags = {f["feature"]["name"]: f for f in response.json()["flags"]}
    return str(flags["banner"]["feature_state_value"])


def _login(page, base: str) -> None:
    page.goto(base + "/login")
    page.fill("input[name=email]", "editor@example.com")
    page.fill("input[name=password]", "password123")
    page.click("button[type=submit]")
    page.wait_for_selector("text=Your projects")


def test_feature_priorities__move_down__changes_winning_value_for_identity(live_server, page):
    # Given carol matches both segments and "Pro plan" wins (priority 0)
    seed = live_server.run(_seed)
    base = live_server.url
    assert _banner_for_carol(page, base, seed["key"]) == "from-pro"
    _login(page, base)
    page.goto(f"{base}/environments/{seed['env']}/features")
    page.wait_for_selector("#features-table")
    screenshot(page, "features-list")
    # When the editor opens the feature and moves "Pro plan" below "Germany"
    page.click("#features-table a:text('banner')")
    page.wait_for_selector("#segment-overrides-table")
    screenshot(page, "feature-detail")
    first = "#segment-overrides-table tbody tr:first-child .segment-name"
    assert page.inner_text(first) == "Pro plan"
    page.click("#segment-overrides-table tbody tr:first-child button.move-down")
    # Then the page shows Germany first, without a reload
    expect(page.locator(first)).to_have_text("Germany")
    assert "Move" in page.inner_text("#segment-overrides-table thead")
    # and the SDK API gives carol Germany's value once the worker sees the new revision
    eventually(lambda: _banner_for_carol(page, base, seed["key"]) == "from-germany", seconds=5)
    # and the reorder shows in the audit log
    page.goto(f"{base}/environments/{seed['env']}/audit")
    page.wait_for_selector("#audit-table")
    assert "reorder" in page.inner_text("#audit-table")
    page.click("#audit-table details summary")
    assert "Germany" in page.inner_text("#audit-table table.diff")
    screenshot(page, "audit-log")


def test_feature_priorities__stale_page__shows_changed_message(live_server, page):
    # Given the editor has the feature page open
    seed = live_server.run(_seed)
    base = live_server.url
    _login(page, base)
    page.goto(f"{base}/environments/{seed['env']}/features/{seed['feature']}")
    page.wait_for_selector("#segment-overrides-table")

    # When someone else adds an override meanwhile and the editor then moves a row
    def add_override() -> None:
        from webapp.extensions import db
        from webapp.models import Feature, Project

        project = db.session.query(Project).one()
        feature = db.session.get(Feature, seed["feature"])
        segment = make_segment(project, "Staff", _rule("staff", "yes"), position=2)
        features_make_segment_override(segment, feature, project.environments[0], "s", 2)

    live_server.run(add_override)
    page.click("#segment-overrides-table tbody tr:first-child button.move-down")
    # Then the current list appears with the conflict message (nothing moved)
    page.wait_for_selector("#segment-overrides-message")
    assert "changed since you opened this page" in page.inner_text("#segment-overrides-message")
    assert page.locator("#segment-overrides-table tbody tr").count() == 3
    assert page.inner_text("#segment-overrides-table tbody tr:first-child .segment-name") == (
        "Pro plan"
    )


def _seed_three() -> dict:
    seed = _seed()
    from webapp.extensions import db
    from webapp.models import Environment, Feature

    feature = db.session.get(Feature, seed["feature"])
    env = db.session.get(Environment, seed["env"])
    staff = make_segment(feature.project, "Staff", _rule("staff", "yes"), position=2)
    features_make_segment_override(staff, feature, env, "from-staff", priority=2)
    return seed


def _open_three(live_server, page):
    """Seed three segment overrides (Pro plan, Germany, Staff), log the editor in and open
    the feature page; return its override rows."""
    seed = live_server.run(_seed_three)
    _login(page, live_server.url)
    page.goto(f"{live_server.url}/environments/{seed['env']}/features/{seed['feature']}")
    rows = page.locator("#segment-overrides-table tbody tr.segment-override")
    expect(rows).to_have_count(3)
    return rows


def _names(page) -> list[str]:
    return page.locator("#segment-overrides-table tbody tr .segment-name").all_inner_texts()


def _drag(page, source, target, below: bool) -> None:
    """Drag ``source`` onto ``target`` with the mouse, as a person does: press, move, release."""
    start, end = source.bounding_box(), target.bounding_box()
    page.mouse.move(start["x"] + 20, start["y"] + start["height"] / 2)
    page.mouse.down()
    y = end["y"] + end["height"] * (0.75 if below else 0.25)
    page.mouse.move(end["x"] + 20, y, steps=12)
    page.mouse.up()


def test_feature_priorities__drag_last_row_to_top__saves_new_order(live_server, page):
    # Given three segment overrides: Pro plan, Germany, Staff
    rows = _open_three(live_server, page)
    assert _names(page) == ["Pro plan", "Germany", "Staff"]
    # When the editor drags "Staff" with the mouse onto the first row
    with page.expect_response(lambda r: r.url.endswith("/segment-overrides/order")) as answer:
        _drag(page, rows.nth(2), rows.nth(0), below=False)
    # Then the server accepted the order (no "This field is required.")
    assert answer.value.status == 200, answer.value.text()
    expect(page.locator("#segment-overrides-message")).to_have_count(0)
    expect(rows.first.locator(".segment-name")).to_have_text("Staff")
    # and the order is stored: a reload shows it, numbered 1…n
    page.reload()
    expect(rows).to_have_count(3)
    assert _names(page) == ["Staff", "Pro plan", "Germany"]
    assert rows.locator(".priority").all_inner_texts() == ["1", "2", "3"]
    # and dragging a row down, below another, works too (the reload waits for the save: a
    # reload racing the request showed the old order now and then)
    with page.expect_response(lambda r: r.url.endswith("/segment-overrides/order")) as answer:
        _drag(page, rows.nth(0), rows.nth(1), below=True)
    assert answer.value.status == 200, answer.value.text()
    expect(rows.first.locator(".segment-name")).to_have_text("Pro plan")
    page.reload()
    assert _names(page) == ["Pro plan", "Staff", "Germany"]


def test_feature_priorities__arrows_by_mouse_and_keyboard__save_new_order(live_server, page):
    # Given three segment overrides: Pro plan, Germany, Staff
    rows = _open_three(live_server, page)
    # When the editor clicks ↓ on the first row
    rows.nth(0).locator("button.move-down").click()
    expect(rows.first.locator(".segment-name")).to_have_text("Germany")
    # and then, with the keyboard, moves "Staff" up: Tab to its ↑ button and press Enter
    rows.nth(2).locator("button.move-up").focus()
    page.keyboard.press("Enter")
    expect(rows.nth(1).locator(".segment-name")).to_have_text("Staff")
    # and presses Space on Staff's ↑ again: focus stays on the moved row's button
    expect(rows.nth(1).locator("button.move-up")).to_be_focused()
    page.keyboard.press("Space")
    expect(rows.first.locator(".segment-name")).to_have_text("Staff")
    # Then a reload shows the saved order
    page.reload()
    expect(rows).to_have_count(3)
    assert _names(page) == ["Staff", "Germany", "Pro plan"]


def test_feature_priorities__press_at_once_on_the_new_list__handled_in_place(live_server, page):
    # Given three segment overrides on the feature page
    rows = _open_three(live_server, page)
    # When the editor presses ↓ on the first row, and a quick hand presses Staff's ↑ in the
    # very next moment after the new list is swapped in (the next timer turn, before any delay)
    page.evaluate(
        """() => {
            window.samePage = true;
            document.addEventListener("htmx:afterSwap", () => setTimeout(() => {
                const button = document.querySelectorAll(
                    "#segment-overrides-table tr.segment-override button.move-up")[2];
                button.focus();
                button.click();
            }, 0), { once: true });
        }"""
    )
    with page.expect_response(lambda r: r.url.endswith("/segment-overrides/order")):
        rows.nth(0).locator("button.move-down").click()
    # Then the second press is handled in place too: the page was not reloaded by an ordinary
    # form post, the order is Germany, Staff, Pro plan, and the focus is on Staff's ↑
    expect(rows.nth(1).locator(".segment-name")).to_have_text("Staff")
    assert page.evaluate("window.samePage === true"), "the second press reloaded the page"
    expect(rows.nth(1).locator("button.move-up")).to_be_focused()
    assert _names(page) == ["Germany", "Staff", "Pro plan"]
