"""Stored and reflected XSS in a real browser: payloads show as text, nothing runs.

The same hostile data as ``tests/hardening/test_escaping.py`` (payloads in identifiers,
trait keys and values, feature, segment and audit fields, and the admin's own email) is
opened page by page, including the partials htmx swaps in (search results, why panel,
inline trait and override editors). Any dialog, injected element or CSP violation fails.
The Content-Security-Policy would block most injected scripts anyway, so the DOM checks,
not only the dialog listener, are what prove the escaping.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import screenshot
from tests.hardening.test_escaping import (
    ADMIN_EMAIL,
    PASSWORD,
    SCRIPT,
    TEXTAREA,
    HostileWorld,
    build_hostile_world,
)

pytestmark = pytest.mark.browser

INJECTED = ("img[src=x]", "img[onerror]", "svg[onload]", "script:has-text('alert')",
            "iframe", "[onerror]", "[onload]")  # fmt: skip


@dataclass
class Watch:
    """What the page did that it must not: dialogs and CSP violations."""

    dialogs: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)


@pytest.fixture
def hostile(live_server: Any, page: Any) -> Iterator[tuple[HostileWorld, Watch]]:
    world = live_server.run(build_hostile_world)
    watch = Watch()

    def on_dialog(dialog: Any) -> None:
        watch.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def on_console(message: Any) -> None:
        if "Content Security Policy" in message.text:
            watch.violations.append(message.text)

    page.on("dialog", on_dialog)
    page.on("console", on_console)
    page.goto(live_server.url + "/login")
    page.fill("input[name=email]", ADMIN_EMAIL)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("text=Your projects")
    yield world, watch


def assert_clean(page: Any, watch: Watch, where: str) -> None:
    """No dialog, no CSP violation and no injected element on the page as it is now."""
    page.wait_for_load_state("load")
    for selector in INJECTED:
        assert page.locator(selector).count() == 0, f"{where}: injected {selector}"
    assert watch.dialogs == [], f"{where}: dialog fired {watch.dialogs}"
    assert watch.violations == [], f"{where}: CSP blocked {watch.violations}"


def _env(live_server: Any, world: HostileWorld) -> str:
    return f"{live_server.url}/environments/{world.env}"


def test_users_page__hostile_identities__search_results_render_as_text(
    live_server: Any, page: Any, hostile: tuple[HostileWorld, Watch]
) -> None:
    world, watch = hostile
    values = world.values
    # Given the Users page
    page.goto(_env(live_server, world) + "/users")
    assert_clean(page, watch, "users")
    # When searching for the hostile identity by its identifier prefix
    page.fill("#user-search", "id")
    row = page.locator(f"#users-table tr#identity-{world.identity}")
    expect(row).to_be_visible()
    expect(page.locator(f"#users-table tr#identity-{world.plain_identity}")).to_have_count(0)
    # Then the identifier and the trait column values show as text
    expect(row.locator("a.identity-link")).to_have_text(values["identifier"])
    expect(row).to_contain_text(values["trait_value"])
    expect(page.locator("#users-count")).to_contain_text("1 identity match")
    assert_clean(page, watch, "users search results")
    # And a malformed search quoting a payload shows its error as text
    quoted = f"{SCRIPT}{TEXTAREA}"
    page.fill("#user-search", f"plan = 'x' '{quoted}'")
    expect(page.locator("#search-error")).to_contain_text(quoted)
    assert_clean(page, watch, "users search error")
    screenshot(page, "xss-users")


def test_identity_page__hostile_data__flags_traits_why_and_editors_render_as_text(
    live_server: Any, page: Any, hostile: tuple[HostileWorld, Watch]
) -> None:
    world, watch = hostile
    values = world.values
    # Given the hostile identity's page
    page.goto(f"{_env(live_server, world)}/identities/{world.identity}")
    # Then identifier, linked user, traits, segment, flags and history show as text
    expect(page.locator("#identity-identifier")).to_have_text(values["identifier"])
    expect(page.locator("#identity-linked-users")).to_contain_text(values["linked_email"])
    traits = page.locator("#traits-table")
    expect(traits).to_contain_text(values["trait_key"])
    expect(traits).to_contain_text(values["trait_value"])
    expect(page.locator("#identity-segments")).to_contain_text(values["segment_name"])
    multi = page.locator('[id="flag-xss.multi"]')
    expect(multi.locator("td.effective-value")).to_contain_text(values["segment_value"])
    expect(page.locator('[id="flag-xss-override"]')).to_contain_text(values["override_value"])
    expect(page.locator("#identity-history")).to_contain_text(values["audit_label"])
    assert_clean(page, watch, "identity page")

    # When the why panel of the segment-driven flag opens
    multi.locator("button.why").click()
    why = page.locator("tr.why-row")
    # Then the segment name and the rule's property and value are text
    expect(why).to_contain_text(values["segment_name"])
    expect(why).to_contain_text(values["trait_key"])
    expect(why).to_contain_text(values["trait_value"])
    assert_clean(page, watch, "why panel")

    # When the hostile trait is edited inline
    row = page.locator("tr.trait-row", has_text=values["trait_key"])
    row.locator("button.edit-trait").click()
    editor = page.locator("tr.trait-row.editing input.trait-edit-value")
    # Then the input holds the value verbatim
    expect(editor).to_have_value(values["trait_value"])
    assert_clean(page, watch, "inline trait editor")

    # When the override value editor opens (a <textarea>, the `</textarea>` payload's target)
    page.locator('[id="flag-xss-override"] button.edit-override').click()
    textarea = page.locator("form.override-form textarea.override-value")
    expect(textarea).to_have_value(values["override_value"])
    assert_clean(page, watch, "override editor")
    screenshot(page, "xss-identity")


def test_segments_pages__hostile_segment__list_detail_and_builder_render_as_text(
    live_server: Any, page: Any, hostile: tuple[HostileWorld, Watch]
) -> None:
    world, watch = hostile
    values = world.values
    segments = f"{_env(live_server, world)}/segments"
    # Given the segments list
    page.goto(segments)
    expect(page.locator("a.segment-link")).to_have_text(values["segment_name"])
    assert_clean(page, watch, "segments list")
    # And the detail's tabs
    page.goto(f"{segments}/{world.segment}")
    expect(page.locator("main")).to_contain_text(values["segment_description"])
    expect(page.locator("main")).to_contain_text(values["trait_value"])
    assert_clean(page, watch, "segment rules")
    page.goto(f"{segments}/{world.segment}?tab=members")
    expect(page.locator("main")).to_contain_text(values["identifier"])
    assert_clean(page, watch, "segment members")
    page.goto(f"{segments}/{world.segment}?tab=overrides")
    # (editors see the override's value in its inline form's input)
    expect(page.locator("main input[name=value]").first).to_have_value(values["segment_value"])
    assert_clean(page, watch, "segment overrides")
    # When the builder opens on it
    page.goto(f"{segments}/{world.segment}/edit")
    # Then its inputs hold the payloads verbatim
    expect(page.locator("#segment-builder input[name=name]")).to_have_value(
        values["segment_name"]
    )
    expect(page.locator("#segment-builder textarea[name=description], "
                        "#segment-builder input[name=description]")).to_have_value(
        values["segment_description"]
    )  # fmt: skip
    expect(page.locator("#segment-builder input.property").first).to_have_value(
        values["trait_key"]
    )
    assert_clean(page, watch, "segment builder")
    # And re-rendering the builder through htmx keeps them text
    page.locator("#add-group").click()
    expect(page.locator("#group-1")).to_be_visible()
    assert_clean(page, watch, "segment builder after htmx")
    screenshot(page, "xss-segment-builder")


def test_features_and_audit_pages__hostile_data__render_as_text(
    live_server: Any, page: Any, hostile: tuple[HostileWorld, Watch]
) -> None:
    world, watch = hostile
    values = world.values
    env = _env(live_server, world)
    # Given the features list, a feature's detail and its edit form
    page.goto(f"{env}/features")
    # (the list truncates long values and descriptions)
    row = page.locator(f"tr#feature-{world.features[0]}")
    expect(row).to_contain_text("fv" + SCRIPT)
    expect(row).to_contain_text("fd" + SCRIPT)
    assert_clean(page, watch, "features list")
    page.goto(f"{env}/features/{world.features[0]}")
    main = page.locator("main")
    expect(main).to_contain_text(values["description"])
    for tag in ("ov", "sn", "sv"):  # option, segment name, segment value (maybe truncated)
        expect(main).to_contain_text(tag + SCRIPT)
    assert_clean(page, watch, "feature detail")
    page.goto(f"{env}/features/{world.features[0]}/edit")
    expect(page.locator("textarea[name=description]")).to_have_value(values["description"])
    assert_clean(page, watch, "feature edit")
    # And the audit log, its filters offering the hostile actor
    page.goto(f"{env}/audit")
    table = page.locator("#audit-table")
    expect(table).to_contain_text(values["audit_label"])
    expect(table).to_contain_text(ADMIN_EMAIL)
    expect(page.locator("#audit-actor option", has_text=ADMIN_EMAIL)).to_have_count(1)
    assert_clean(page, watch, "audit log")
    # And the environment page with the hostile server key
    page.goto(env)
    expect(page.locator("#environment-keys")).to_contain_text(values["server_key"])
    expect(page.locator("main h1")).to_contain_text(values["environment"])
    assert_clean(page, watch, "environment page")
    screenshot(page, "xss-environment")
