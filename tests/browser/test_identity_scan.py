"""The Identity page at 30+ flags in a real browser: "Why?" opens under its row and in view,
the filter narrows the rows by name, override and difference from the default."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import screenshot
from tests.factories import (
    identities_make_override,
    make_environment,
    make_feature,
    make_identity,
    make_project,
    make_user,
)

pytestmark = pytest.mark.browser

FLAGS = 32
LONG = "_for_returning_customers_in_the_european_union"


def _name(index: int) -> str:
    return f"flag_{index:02d}{LONG if index % 5 == 0 else ''}"


def _seed() -> dict[str, Any]:
    project = make_project("Demo")
    environment = make_environment(project, "Production")
    make_user("editor@example.com", "editor", project)
    features = [
        make_feature(project, _name(i), enabled=i % 2 == 0, value=i if i % 3 == 0 else None)
        for i in range(FLAGS)
    ]
    identity = make_identity(environment, "pm-target", {"plan": "pro"})
    # flag_01 and flag_07 are overridden to a different state; flag_02 is overridden to the
    # state and value it already has (overridden, yet no different from the default)
    identities_make_override(identity, features[1], enabled=True)
    identities_make_override(identity, features[7], enabled=True, value="beta")
    identities_make_override(identity, features[2], enabled=True)
    return {"env": environment.id, "identity": identity.id}


def _open(live_server: Any, page: Any, seed: dict[str, Any], query: str = "") -> None:
    page.goto(live_server.url + "/login")
    page.fill("input[name=email]", "editor@example.com")
    page.fill("input[name=password]", "password123")
    page.click("button[type=submit]")
    page.wait_for_selector("text=Your projects")
    page.goto(f"{live_server.url}/environments/{seed['env']}/identities/{seed['identity']}{query}")
    expect(page.locator("#flags-table tr.flag-row")).to_have_count(FLAGS)


def _in_viewport(page: Any, locator: Any) -> bool:
    box = locator.bounding_box()
    height = page.viewport_size["height"]
    return box is not None and box["y"] >= 0 and box["y"] < height


def _visible_names(page: Any) -> list[str]:
    return page.locator("#flags-table tr.flag-row:visible td.feature-name .name").all_inner_texts()


def test_why__any_row__opens_under_its_row_in_view_and_closes(live_server, page):
    # Given the identity page with 32 flags, at 1400 px
    seed = live_server.run(_seed)
    page.set_viewport_size({"width": 1400, "height": 900})
    _open(live_server, page, seed)
    for index in (0, FLAGS - 1):
        row = page.locator(f'[id="flag-{_name(index)}"]')
        # When "Why?" is pressed on the first and on the last row
        row.locator("button.why").click()
        panel = page.locator(f'[id="flag-{_name(index)}"] + tr.why-row')
        # Then the explanation is the very next table row, visible on screen, and says so
        expect(panel).to_be_visible()
        expect(panel.locator("div.why")).to_contain_text(_name(index))
        expect(row.locator("button.why")).to_have_attribute("aria-expanded", "true")
        assert _in_viewport(page, panel), f"the panel of {_name(index)} is off screen"
        assert _in_viewport(page, row), f"the row of {_name(index)} scrolled away"
        if index == 0:
            screenshot(page, "identity-why-first-row")
    # When the first flag is turned off with its panel open, the panel explains the new state
    first = page.locator(f'[id="flag-{_name(0)}"]')
    expect(first.locator("+ tr.why-row h3")).to_contain_text(" on ")
    first.locator("button.toggle-override").click()
    expect(first.locator("td.effective-enabled")).to_have_text("off")
    expect(first.locator("+ tr.why-row h3")).to_contain_text(" off ")
    expect(page.locator(f'[id="flag-{_name(0)}"] + tr.why-row')).to_have_count(1)
    # When "Why?" is pressed again on the last row, its panel closes; Close closes the first
    last = page.locator(f'[id="flag-{_name(FLAGS - 1)}"]')
    last.locator("button.why").click()
    expect(page.locator(f'[id="flag-{_name(FLAGS - 1)}"] + tr.why-row')).to_have_count(0)
    expect(last.locator("button.why")).to_have_attribute("aria-expanded", "false")
    page.locator(f'[id="flag-{_name(0)}"] + tr.why-row button.why-close').click()
    expect(page.locator("tr.why-row")).to_have_count(0)
    expect(page.locator(f'[id="flag-{_name(0)}"] button.why')).to_be_focused()


def test_filter__name_overridden_differs__narrows_rows_and_survives_reload(live_server, page):
    # Given the identity page with 32 flags
    seed = live_server.run(_seed)
    _open(live_server, page, seed)
    count = page.locator("#flag-filter-count")
    expect(count).to_have_text(f"{FLAGS} flags")
    # When the PM types part of a name (any case)
    page.fill("#flag-filter-name", "EUROPEAN")
    # Then only the matching flags are shown, with a count
    expected = [_name(i) for i in range(FLAGS) if i % 5 == 0]
    expect(count).to_have_text(f"{len(expected)} of {FLAGS} flags")
    assert _visible_names(page) == expected
    # When the name is cleared and "Overridden" ticked: the three overridden flags
    page.fill("#flag-filter-name", "")
    page.check("#flag-filter-overridden")
    expect(count).to_have_text(f"3 of {FLAGS} flags")
    assert _visible_names(page) == [_name(1), _name(2), _name(7)]
    # and with "Differs from default" too: flag_02 is overridden to its default state
    page.check("#flag-filter-differs")
    expect(count).to_have_text(f"2 of {FLAGS} flags")
    assert _visible_names(page) == [_name(1), _name(7)]
    # When nothing matches, the table says so
    page.fill("#flag-filter-name", "no-such-flag")
    expect(page.locator("#flags-table tr.no-flag-matches")).to_be_visible()
    # Then a reload keeps the filter (it lives in the address)
    page.fill("#flag-filter-name", "flag_0")
    page.reload()
    expect(page.locator("#flag-filter-differs")).to_be_checked()
    expect(page.locator("#flag-filter-name")).to_have_value("flag_0")
    expect(count).to_have_text(f"2 of {FLAGS} flags")
    # and a re-rendered flag table (a trait change) is filtered again
    page.fill("#trait-add-key", "country")
    page.fill("#trait-add-value", "DE")
    with page.expect_response(lambda r: r.url.endswith("/flags")):
        page.click("#trait-add-submit")
    expect(count).to_have_text(f"2 of {FLAGS} flags")
    assert _visible_names(page) == [_name(1), _name(7)]
