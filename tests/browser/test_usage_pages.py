"""Flag usage in Chromium: a PM reads the Features list's 30-day charts, filters it to stale
flags with the form (choose, type N, press Enter) and reads the evidence, on a desktop and a
phone-sized window, with 30 features whose names are as long as a name may be."""

from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import screenshot
from tests.factories import make_environment, make_feature, make_identity, make_project, make_user
from webapp.clock import utcnow
from webapp.extensions import db
from webapp.services.usage.recorder import Served, UsageBuffer

pytestmark = pytest.mark.browser
FEATURES = 30
LONG = "checkout_" + "very_long_feature_name_" * 4


def _seed() -> dict:
    project = make_project("Shop")
    env = make_environment(project, "Production")
    make_user("viewer@example.com", "viewer", project)
    alice = make_identity(env, "alice")
    features = [
        make_feature(project, f"{LONG}{n:02d}"[:150], enabled=True, value=n)
        for n in range(FEATURES)
    ]
    db.session.commit()
    buffer = UsageBuffer(db.engine, interval=None)
    now = utcnow()
    # Every third feature was evaluated on each of the last 30 days, more as days go by;
    # the others never were.
    for days_ago in range(30):
        counts = {f.id: (30 - days_ago) * 10 + n for n, f in enumerate(features) if n % 3 == 0}
        buffer.add_counts(env.id, counts, now - timedelta(days=days_ago))
    # The first feature served the same value for 20 days, the second changed today.
    first, second = features[0], features[1]
    buffer.add_served(env.id, alice.id, [Served(first.id, True, 0, None)], now - timedelta(days=20))
    buffer.add_served(env.id, alice.id, [Served(first.id, True, 0, None)], now)
    buffer.add_served(env.id, alice.id, [Served(second.id, True, 1, None)],
                      now - timedelta(days=20))  # fmt: skip
    buffer.add_served(env.id, alice.id, [Served(second.id, False, 1, None)], now)
    buffer.flush()
    return {"env": env.id, "first": first.id, "second": second.id, "used": features[3].id,
            "never": features[2].id}


def _fits(page) -> None:
    found = page.evaluate(
        """() => {
          const root = document.documentElement, width = root.clientWidth, out = [];
          const wide = el => el.getBoundingClientRect().right > width + 1;
          for (const el of document.body.querySelectorAll('*')) {
            if (out.length >= 6 || !wide(el) || Array.from(el.children).some(wide)) { continue; }
            out.push(el.tagName.toLowerCase() + '.' + el.className + ' right='
                     + Math.round(el.getBoundingClientRect().right));
          }
          return {over: root.scrollWidth - width, culprits: out};
        }"""
    )
    assert found["over"] <= 0, f"the page scrolls sideways: {found}"


@pytest.mark.parametrize("width", [1280, 390])
def test_features_list__charts_and_stale_filter__read_and_used_like_a_pm(
    live_server, page, width
):
    world = live_server.run(_seed)
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(live_server.url + "/login")
    page.fill("input[name=email]", "viewer@example.com")
    page.fill("input[name=password]", "password123")
    page.press("input[name=password]", "Enter")
    page.wait_for_selector("text=Your projects")

    # Given the Features list: used features draw their bars, the others say so
    page.goto(f"{live_server.url}/environments/{world['env']}/features")
    used = page.locator(f"#feature-{world['used']}")
    expect(used.locator("svg path")).to_have_count(1)
    assert used.locator("svg").bounding_box()["width"] > 50
    expect(page.locator(f"#usage-{world['never']} .usage-last")).to_have_text("last: never")
    assert used.locator("svg path").get_attribute("d")
    screenshot(page, f"usage-features-{width}")
    _fits(page)
    name = page.locator(f"#feature-{world['used']} td").first.bounding_box()
    assert name["width"] >= 150, f"the name column is squeezed to {name['width']} px"

    # When the PM asks for flags that served one value for 14 days, with the form
    page.select_option("#stale-kind", "constant")
    page.fill("#stale-days", "")
    page.type("#stale-days", "14")
    page.press("#stale-days", "Enter")

    # Then only the constant one is listed, with its evidence, and the URL keeps the filter
    expect(page.locator("tbody tr")).to_have_count(1)
    evidence = page.locator(f"#feature-{world['first']} .stale-evidence")
    expect(evidence).to_contain_text("to every identity seen in the last 14 days")
    expect(evidence).to_contain_text("the only value since")
    assert "stale=constant" in page.url and "days=14" in page.url
    screenshot(page, f"usage-stale-constant-{width}")
    _fits(page)

    # And a bad N is refused before it is sent (the field's own range), the filter kept;
    # a crafted URL gets the inline 422 (tests/web/features/test_usage_pages.py)
    page.fill("#stale-days", "0")
    page.press("#stale-days", "Enter")
    assert page.eval_on_selector("#stale-days", "field => field.validity.rangeUnderflow")
    assert "days=14" in page.url
    expect(page.locator("tbody tr")).to_have_count(1)
