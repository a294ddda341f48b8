"""No page scrolls sideways at 1,400 px, whatever the names: every GET page of the dashboard,
walked from ``app.url_map``, is opened in Chromium over a world whose names are all at their
allowed limits (150-character feature names, 200-character segment, project, environment and
key names, 2,000-character identifiers and trait values, 200-character trait keys, 250-character
emails), plus the panels that open in place (why, override and trait editors, bulk action)."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.factories import (
    identities_make_link,
    identities_make_option,
    identities_make_segment_override,
    make_environment,
    make_feature,
    make_identity,
    make_project,
    make_segment,
    make_user,
)
from tests.hardening.routes_table import API_PREFIXES, build_url
from webapp.clock import utcnow
from webapp.extensions import db
from webapp.models import IdentityOverride, ServerKey
from webapp.services import people
from webapp.services.experiments import lifecycle
from webapp.services.identities import identity_overrides

pytestmark = pytest.mark.browser

WIDTH = 1400
# One long token each (no spaces: the hardest case for wrapping), at the limit.
FEATURE = ("feature_at_the_limit_" + "x" * 150)[:150]
FEATURE_MV = ("multivariate.at-the-limit_" + "m" * 150)[:150]
SEGMENT = ("Segment_at_the_limit_" + "s" * 200)[:200]
IDENTIFIER = ("identifier_at_the_limit_" + "i" * 2000)[:2000]
TRAIT_KEY = ("a_trait_key_at_the_limit_" + "k" * 200)[:200]  # sorts first: a default column
TRAIT_VALUE = ("trait_value_" + "v" * 2000)[:2000]
NAME_200 = "N" * 200
# 64-character local part, domain labels of 63: 250 characters in all.
EMAIL = "a" * 64 + "@" + ".".join(["b" * 63, "c" * 63, "d" * 54]) + ".com"
ADMIN_PASSWORD = "password123"
# Endpoints that are not pages a person opens: the logout action, files.
SKIP = {"static", "auth.logout"}


def _seed() -> dict[str, str]:
    project = make_project(("Project_" + "p" * 200)[:200])
    env = make_environment(project, ("Environment_" + "e" * 200)[:200])
    # An organisation admin (every project), so the people pages are walked with long names.
    admin = make_user(EMAIL, "admin", all_projects=True)
    qa_user = make_user(("q" * 64 + "@" + "x" * 180 + ".com"), "qa", project)
    banner = make_feature(project, FEATURE, enabled=True, value="v" * 2000)
    checkout = make_feature(project, FEATURE_MV, type="MULTIVARIATE", value="c" * 500)
    option = identities_make_option(checkout, "o" * 2000, 30.0)
    for i in range(3):
        make_feature(project, (f"other_{i}_" + "z" * 150)[:150])
    segment = make_segment(
        project,
        SEGMENT,
        [
            {
                "type": "ALL",
                "rules": [],
                "conditions": [{"property_": TRAIT_KEY, "operator": "EQUAL", "value": "w" * 1000}],
            }
        ],
    )
    make_segment(project, SEGMENT[:-1] + "2")
    seg_override = identities_make_segment_override(segment, banner, env, value="s" * 2000)
    alice = make_identity(env, IDENTIFIER, {TRAIT_KEY: TRAIT_VALUE, "plan": "pro"})
    make_identity(env, IDENTIFIER[:-1] + "2", {TRAIT_KEY[:-1] + "2": TRAIT_VALUE})
    identities_make_link(qa_user, alice)
    key = ServerKey(environment=env, name=NAME_200)
    db.session.add(key)
    db.session.commit()
    now = utcnow()
    event = identity_overrides.toggle_override(admin, alice, banner, now, None).event_id
    identity_overrides.toggle_override(admin, alice, checkout, now, None)
    experiment = lifecycle.start_experiment(
        env, checkout, ("Experiment_" + "x" * 200)[:200], ("goal_" + "g" * 200)[:200],
        segment.id, admin, now,
    )  # fmt: skip
    override_id = db.session.scalar(
        db.select(IdentityOverride.id).where(
            IdentityOverride.identity_id == alice.id, IdentityOverride.feature_id == banner.id
        )
    )
    invitation = people.invite(admin, "i" * 64 + "@" + "n" * 63 + ".example.com",
                               {project.id: "viewer"}, now)  # fmt: skip
    reset = people.issue_reset_link(admin, qa_user.id, now)
    ids: dict[str, Any] = {
        "invite_token": invitation.token,
        "reset_token": reset.token,
        "env": env.id,
        "project": project.id,
        "banner": banner.id,
        "checkout": checkout.id,
        "opt1": option.id,
        "alice": alice.id,
        "alice_banner_override": override_id,
        "seg_override": seg_override.id,
        "alice_trait": TRAIT_KEY,
        "alice_event": event,
        "segment": segment.id,
        "server_key": key.id,
        "qa_user": qa_user.id,
        "experiment": experiment.id,
        "static_file": "vendor/htmx.min.js",
    }
    return {name: str(value) for name, value in ids.items()}


def _get_pages(app: Any) -> list[str]:
    """Every GET endpoint outside the APIs (a page added later is walked too)."""
    return sorted(
        {
            rule.endpoint
            for rule in app.url_map.iter_rules()
            if "GET" in (rule.methods or ())
            and not rule.rule.startswith(API_PREFIXES)
            and rule.endpoint not in SKIP
        }
    )


def _overflow(page: Any) -> dict[str, Any]:
    """The document's scroll and client widths, and the elements sticking out on the right."""
    return page.evaluate(
        """() => {
          const root = document.documentElement;
          const width = root.clientWidth;
          const out = [];
          // Name the innermost elements that stick out (their ancestors stick out with them).
          const wide = el => el.getBoundingClientRect().right > width;
          // What a scrolling box clips does not widen the page: skip it.
          const clipped = el => {
            for (let up = el.parentElement; up && up !== document.body; up = up.parentElement) {
              if (getComputedStyle(up).overflowX !== 'visible') { return true; }
            }
            return false;
          };
          for (const el of document.body.querySelectorAll('*')) {
            if (out.length >= 6 || !wide(el) || clipped(el)
                || Array.from(el.children).some(wide)) { continue; }
            const name = el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
              (typeof el.className === 'string' && el.className
                ? '.' + el.className.trim().split(/ +/).join('.') : '');
            out.push(name + ' right=' + Math.round(el.getBoundingClientRect().right));
          }
          return {scroll: root.scrollWidth, client: width, culprits: out};
        }"""
    )


def _assert_fits(page: Any, what: str) -> None:
    found = _overflow(page)
    assert found["scroll"] <= found["client"], (
        f"{what} scrolls sideways at {WIDTH}px: scrollWidth {found['scroll']} > "
        f"clientWidth {found['client']}; widest: {found['culprits']}"
    )


def _login(page: Any, base: str) -> None:
    page.goto(base + "/login")
    page.fill("input[name=email]", EMAIL)
    page.fill("input[name=password]", ADMIN_PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("text=Your projects")).to_be_visible()


@pytest.mark.heavy(seconds=15)
@pytest.mark.parametrize("width", [WIDTH, 390], ids=["desktop", "phone"])
def test_every_page__names_at_their_limits__never_scrolls_sideways(live_server, browser, width):
    # Given a world whose every name is as long as allowed, and an admin on a desktop or
    # a phone-sized window
    world = live_server.run(_seed)
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    try:
        _login(page, live_server.url)
        pages, fragments, failures = [], [], []
        # When every GET page from the URL map is opened
        for endpoint in _get_pages(live_server.app):
            path = build_url(live_server.app, endpoint, "GET", world)
            response = page.goto(live_server.url + path)
            assert response is not None and response.status < 500, f"{path}: {response}"
            html = response.text() if response.ok else ""
            if "<html" not in html:
                fragments.append(endpoint)  # a partial: checked inside the page it belongs to
                continue
            pages.append(endpoint)
            found = _overflow(page)
            if found["scroll"] > found["client"]:
                failures.append(f"{endpoint} ({path[:80]}…): {found}")
        # Then none is wider than the window
        assert not failures, "pages wider than the window:\n" + "\n".join(failures)
        assert {"identities.detail", "segments.index", "audit.index", "users.index"} <= set(
            pages
        ), f"expected the main pages among the walked ones: {pages} (fragments: {fragments})"
    finally:
        context.close()


def test_identity_page__panels_opened_in_place__fit_at_limits(live_server, browser):
    # Given the identity page of the 2,000-character identifier, at 1400 px
    world = live_server.run(_seed)
    context = browser.new_context(viewport={"width": WIDTH, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    try:
        _login(page, live_server.url)
        page.goto(f"{live_server.url}/environments/{world['env']}/identities/{world['alice']}")
        row = page.locator(f'[id="flag-{FEATURE}"]')
        # When the why panel, the override editor and the trait editor open
        row.locator("button.why").click()
        expect(page.locator("tr.why-row")).to_be_visible()
        _assert_fits(page, "the why panel")
        row.locator("button.edit-override").click()
        expect(page.locator("form.override-form")).to_be_visible()
        _assert_fits(page, "the override editor")
        page.locator("tr.trait-row button.edit-trait").first.click()
        expect(page.locator("tr.trait-row.editing")).to_be_visible()
        # Then nothing scrolls sideways
        _assert_fits(page, "the trait editor")
        # And the Users page's bulk action, once counted, fits too
        page.goto(f"{live_server.url}/environments/{world['env']}/users")
        page.locator("#bulk-preview").click()
        expect(page.locator("#bulk-count")).to_be_visible()
        _assert_fits(page, "the bulk action")
    finally:
        context.close()
