"""The Identity page and its read-only partials: effective values, sources, why, roles."""

from __future__ import annotations

import re

import pytest

from tests.factories import identities_make_override, make_identity
from tests.web.identities.conftest import HX
from webapp.extensions import db
from webapp.models import Segment
from webapp.services import humanize
from webapp.services.sdk import sdk_service
from webapp.services.sdk.snapshots import bundle_for_environment

# Pages: runs once, on SQLite (see tests/conftest.py).
pytestmark = pytest.mark.databases("sqlite")


def _row(html: str, name: str) -> str:
    match = re.search(rf'<tr id="flag-{name}".*?</tr>', html, re.S)
    assert match, f"no row for {name}"
    return match.group(0)


def _cell(row: str, cls: str) -> str:
    match = re.search(rf'<td class="{cls}"[^>]*>(.*?)</td>', row, re.S)
    assert match, f"no {cls} cell"
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", match.group(1))).strip()


def test_detail__full_page__shows_header_and_every_flag_sorted(client, auth, world):
    # Given a viewer
    auth.login("viewer@example.com")
    # When they open alice's page
    response = client.get(world.url())
    # Then the full page lists every feature by name, with the markup contract ids
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<html" in html and "HX-Request" in response.headers["Vary"]
    assert "alice@acme.test" in html and "Demo / Production" in html
    names = re.findall(r'<tr id="flag-([a-z_]+)"', html)
    assert names == ["button_colour", "dark_mode", "max_upload_mb", "welcome"]
    for marker in (
        'id="flags-table"',
        'id="traits-table"',
        'id="identity-segments"',
        'id="trait-plan"',
        'id="identity-history"',
    ):
        assert marker in html
    assert "qa@example.com" in html  # the linked dashboard user


def test_detail__htmx_request__returns_partial_without_layout(client, auth, world):
    # Given a viewer
    auth.login("viewer@example.com")
    # When htmx asks for the page
    response = client.get(world.url(), headers=HX)
    # Then it gets the page fragment only
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert html.lstrip().startswith('<div id="identity-page"')
    assert "<html" not in html
    assert "HX-Request" in response.headers["Vary"]


def test_detail__sources__default_segment_override_and_split(client, auth, world):
    # Given bob is in "Pro users" and has an override of welcome
    identities_make_override(world.bob, world.features["welcome"], True, "hi bob")
    db.session.commit()
    auth.login("viewer@example.com")
    # When the page is shown
    html = client.get(world.url(world.bob)).get_data(as_text=True)
    # Then each row names where its effective state comes from
    upload = _row(html, "max_upload_mb")
    assert _cell(upload, "effective-value").startswith("250")
    assert "segment “Pro users”" in _cell(upload, "source")
    welcome = _row(html, "welcome")
    assert (_cell(welcome, "effective-enabled"), _cell(welcome, "source")) == (
        "on",
        "identity override",
    )
    assert _cell(welcome, "effective-value").startswith("“hi bob”")
    assert _cell(_row(html, "dark_mode"), "source") == "default"
    colour = _row(html, "button_colour")
    assert 'class="alloc-bar"' in colour and "bucket" in _cell(colour, "source")


def test_detail__effective_values__equal_what_the_sdk_serves(client, auth, world):
    # Given bob has an override and alice none
    identities_make_override(world.bob, world.features["dark_mode"], True, "x")
    db.session.commit()
    auth.login("viewer@example.com")
    for identity in (world.alice, world.bob):
        # When the page and the SDK evaluation are compared
        html = client.get(world.url(identity)).get_data(as_text=True)
        bundle = bundle_for_environment(world.environment.id)
        from webapp.services.sdk.parsing import IdentifyInput

        result = sdk_service.identify(
            bundle,
            IdentifyInput(identity.identifier, (), False),
            is_server=True,
            now=__import__("webapp.clock").clock.utcnow(),
        )
        # Then every row's effective enabled/value equals the SDK's
        for name, flag in result.results.items():
            row = _row(html, name)
            assert _cell(row, "effective-enabled") == ("on" if flag.enabled else "off")
            shown = _cell(row, "effective-value")
            assert shown.startswith(humanize.value_text(flag.value)), (name, shown)


def test_detail__identity_of_other_environment__is_404(client, auth, world):
    # Given an identity that lives in another project's environment
    stranger = make_identity(world.other_environment, "stranger")
    db.session.commit()
    auth.login("admin@example.com")
    # When it is asked for under this environment
    response = client.get(f"/environments/{world.environment.id}/identities/{stranger.id}")
    # Then it is not found
    assert response.status_code == 404


def test_detail__user_of_another_project__is_404(client, auth, world):
    # Given an admin of another project only
    auth.login("outsider@example.com")
    # When they open alice's page
    response = client.get(world.url())
    # Then the project is not even revealed
    assert response.status_code == 404


def test_detail__anonymous__is_sent_to_login(client, world):
    response = client.get(world.url())
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_detail__viewer__sees_no_edit_controls(client, auth, world):
    # Given a viewer
    auth.login("viewer@example.com")
    # When they open the page
    html = client.get(world.url()).get_data(as_text=True)
    # Then only read-only controls are rendered
    for control in (
        "toggle-override",
        "edit-override",
        "trait-add-form",
        "edit-trait",
        "delete-trait",
        "choose-option",
        "override-expiry",
        "this-is-me",
    ):
        assert control not in html
    assert 'class="why"' in html


def test_detail__qa_on_own_identity__sees_edit_controls(client, auth, world):
    auth.login("qa@example.com")
    html = client.get(world.url()).get_data(as_text=True)
    assert "toggle-override" in html and "trait-add-form" in html and "choose-option" in html
    assert "This is you" in html and "reset-my-overrides" in html


def test_detail__qa_on_other_identity__sees_this_is_me_but_no_edit(client, auth, world):
    auth.login("qa@example.com")
    html = client.get(world.url(world.bob)).get_data(as_text=True)
    assert "toggle-override" not in html and "trait-add-form" not in html
    assert 'id="link-proof"' in html


@pytest.mark.parametrize(
    ("suffix", "root"),
    [
        ("/flags", '<div id="flags"'),
        ("/segments", '<ul id="identity-segments"'),
        ("/history", '<section class="card" id="identity-history"'),
        ("/traits", '<section class="card" id="traits"'),
        ("/traits/plan/row", '<tr id="trait-plan"'),
    ],
)
def test_partials__htmx__render_their_root_only(client, auth, world, suffix, root):
    auth.login("viewer@example.com")
    response = client.get(world.url(suffix=suffix), headers=HX)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert html.lstrip().startswith(root)
    assert "<html" not in html


def test_flag_row__one_feature__renders_that_row(client, auth, world):
    auth.login("viewer@example.com")
    response = client.get(world.flag_url("dark_mode", ""), headers=HX)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert html.lstrip().startswith('<tr id="flag-dark_mode"') and "<html" not in html


def test_flag_row__feature_of_other_project__is_404(client, auth, world):
    from tests.factories import make_feature

    foreign = make_feature(world.other_environment.project, "foreign")
    db.session.commit()
    auth.login("admin@example.com")
    response = client.get(world.url(suffix=f"/flags/{foreign.id}"), headers=HX)
    assert response.status_code == 404


def test_why__segment_flag__shows_trace_and_counterfactual(client, auth, world):
    # Given alice (plan = free) is not in "Pro users", which overrides max_upload_mb
    auth.login("viewer@example.com")
    # When the why panel is loaded
    response = client.get(world.flag_url("max_upload_mb", "/why"), headers=HX)
    html = response.get_data(as_text=True)
    # Then it shows the condition with the trait value seen and how to flip it
    assert response.status_code == 200
    # (a table row, inserted by "Why?" right after its flag's row, as wide as the table)
    assert html.lstrip().startswith('<tr class="why-row" id="why-row-')
    assert '<div class="why card-inset" id="why-max_upload_mb"' in html
    page = client.get(world.url()).get_data(as_text=True)
    columns = len(re.findall(r"<th\b", page.split('id="flags-table"')[1].split("</thead>")[0]))
    assert f'<td colspan="{columns}">' in html
    assert "<html" not in html
    assert "Pro users" in html and "EQUAL" in html and "free" in html
    assert "set plan = &#39;pro&#39; to enter" in html


def test_why__split_flag__shows_bucket(client, auth, world):
    auth.login("viewer@example.com")
    html = client.get(world.flag_url("button_colour", "/why"), headers=HX).get_data(as_text=True)
    assert "bucket is" in html


def test_segments__member__links_or_names_the_segment(client, auth, world):
    auth.login("viewer@example.com")
    html = client.get(world.url(world.bob, "/segments"), headers=HX).get_data(as_text=True)
    assert "Pro users" in html
    # The name links to the Segments page
    segment = db.session.query(Segment).filter_by(name="Pro users").one()
    href = f"/environments/{world.environment.id}/segments/{segment.id}"
    assert f'href="{href}"' in html
    html = client.get(world.url(world.alice, "/segments"), headers=HX).get_data(as_text=True)
    assert "Pro users" not in html and "In no segment" in html


def test_detail__expired_override__is_shown_expired_and_not_applied(client, auth, world):
    # Given alice's override of welcome expired an hour ago
    from datetime import timedelta

    from webapp.clock import utcnow

    identities_make_override(
        world.alice,
        world.features["welcome"],
        True,
        "late",
        expires_at=utcnow() - timedelta(hours=1),
    )
    identities_make_override(
        world.alice,
        world.features["dark_mode"],
        True,
        None,
        expires_at=utcnow() + timedelta(hours=2),
    )
    db.session.commit()
    auth.login("viewer@example.com")
    # When the page is shown
    html = client.get(world.url()).get_data(as_text=True)
    # Then the expired one no longer applies and says so; the other counts down
    welcome = _row(html, "welcome")
    assert _cell(welcome, "effective-enabled") == "off"
    assert _cell(welcome, "source") == "default"
    assert "expired" in _cell(welcome, "override-state")
    dark = _row(html, "dark_mode")
    assert _cell(dark, "source") == "identity override"
    assert "expires in 1 h" in _cell(dark, "override-state")


_VALUES = [None, True, False, 1, 0, 1.0, 0.0, "1", "true", "", "x"]


@pytest.mark.parametrize("default", _VALUES)
@pytest.mark.parametrize("value", _VALUES)
@pytest.mark.parametrize("enabled", [True, False])
def test_flag_row__differs_from_default__compares_state_type_and_value(enabled, value, default):
    # Given a row whose default is on with ``default`` and whose effective state is ``value``
    from webapp.services.identities.flag_rows import FlagRow

    row = FlagRow(
        feature_id=1,
        name="f",
        is_multivariate=False,
        default_enabled=True,
        default_value=default,
        enabled=enabled,
        value=value,
        source="default",
        source_label="default",
        reason="",
        split=None,
        override=None,
        options=(),
    )
    # Then it differs when the state differs, or the value differs in type or value
    # (1, 1.0 and True are equal in Python, not for an SDK)
    same = enabled and type(value) is type(default) and value == default
    assert row.differs_from_default is (not same)


def test_detail__flag_rows__carry_the_filter_facts(client, auth, world):
    # Given alice has an identity override on dark_mode
    identities_make_override(world.alice, world.features["dark_mode"], enabled=True)
    db.session.commit()
    auth.login("viewer@example.com")
    # When the page is opened
    html = client.get(world.url()).get_data(as_text=True)
    # Then every flag row says its name, whether it is overridden and whether it differs,
    # for the filter (the filter form itself is shown by identities.js)
    rows = re.findall(r'<tr id="flag-[^"]*" class="flag-row[^>]*>', html, re.S)
    assert len(rows) == len(world.features)
    for row in rows:
        assert re.search(r'data-name="[^"]+"', row)
        assert re.search(r'data-overridden="(true|false)"', row)
        assert re.search(r'data-differs="(true|false)"', row)
    dark = _row(html, "dark_mode")
    assert 'data-overridden="true"' in dark and 'data-differs="true"' in dark
    assert 'id="flag-filter"' in html and 'id="flag-filter-name"' in html
