"""Usage on the pages: the Features list's chart column and stale filter, the Feature page's
evaluations card, the Identity page's "Seen by this identity", and variant keys on options."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from tests.factories import make_feature
from tests.web.features.conftest import HX, assert_partial
from webapp.clock import utcnow
from webapp.extensions import db
from webapp.models import Identity
from webapp.services.features import feature_options
from webapp.services.usage.recorder import Served, UsageBuffer

pytestmark = pytest.mark.databases("sqlite")


@pytest.fixture
def viewer(auth, world):
    auth.login("viewer@example.com")
    return world


def _record(world, counts, days_ago=0, env=None):
    buffer = UsageBuffer(db.engine, interval=None)
    buffer.add_counts((env or world.env).id, counts, utcnow() - timedelta(days=days_ago))
    buffer.flush()


def _cell(html, feature_id):
    return html.split(f'id="usage-{feature_id}"', 1)[1].split("</td>", 1)[0]


def _bars(svg_html):
    return [int(n) for n in re.findall(r'data-count="(\d+)"', svg_html)]


def test_features_list__usage_column__chart_total_and_last(client, viewer):
    _record(viewer, {viewer.dark.id: 12, viewer.limit.id: 3})
    _record(viewer, {viewer.dark.id: 6}, days_ago=2)
    _record(viewer, {viewer.dark.id: 1000}, env=viewer.prod)  # another environment
    html = client.get(viewer.url()).get_data(as_text=True)
    dark = _cell(html, viewer.dark.id)
    # Two bars: day 28 at half the peak, day 30 (today) at full height (18 of 20 units).
    assert 'd="M271 19v-9.00h8v9.00zM291 19v-18.00h8v18.00z"' in dark
    assert ": 18 evaluations, busiest day 12</title>" in dark
    assert '<span class="usage-total">18</span>' in dark
    assert "last: <time" in dark
    assert '<span class="usage-total">3</span>' in _cell(html, viewer.limit.id)


def test_features_list__never_evaluated__says_never(client, viewer):
    html = client.get(viewer.url()).get_data(as_text=True)
    cell = _cell(html, viewer.dark.id)
    assert '<span class="usage-total">0</span>' in cell
    assert 'd=""' in cell  # no bars
    assert "never" in cell


def test_features_list__htmx_search__partial_keeps_usage(client, viewer):
    _record(viewer, {viewer.dark.id: 4})
    response = client.get(viewer.url("?q=dark"), headers=HX)
    body = assert_partial(response, "features-list")
    assert '<span class="usage-total">4</span>' in _cell(body, viewer.dark.id)


def test_features_list__stale_unused__filters_with_evidence(client, viewer):
    _record(viewer, {viewer.dark.id: 1})
    _record(viewer, {viewer.limit.id: 1}, days_ago=40)
    html = client.get(viewer.url("?stale=unused&days=30")).get_data(as_text=True)
    assert f'id="feature-{viewer.limit.id}"' in html
    assert f'id="feature-{viewer.dark.id}"' not in html
    evidence = _cell(html, viewer.limit.id)
    assert "No evaluations in the last 30 days; last evaluated <time" in evidence


def test_features_list__stale_constant__filters_with_evidence(client, viewer):
    alice = db.session.query(Identity).filter_by(identifier="alice").one()
    buffer = UsageBuffer(db.engine, interval=None)
    now = utcnow()
    since = now - timedelta(days=20)
    for when in (since, now):
        buffer.add_served(viewer.env.id, alice.id, [Served(viewer.limit.id, True, 25, None)], when)
    buffer.add_served(viewer.env.id, alice.id, [Served(viewer.dark.id, False, None, None)], now)
    buffer.flush()
    html = client.get(viewer.url("?stale=constant&days=14")).get_data(as_text=True)
    assert f'id="feature-{viewer.dark.id}"' not in html  # seen for less than 14 days
    evidence = _cell(html, viewer.limit.id)
    assert (
        "to every identity seen in the last 14 days (recorded on 1 calendar day; the only value "
        f"since {since:%Y-%m-%d})."
    ) in " ".join(evidence.split())
    assert '<code class="value value-number">25</code>' in evidence


def test_features_list__stale_filter_nothing_found__says_so(client, viewer):
    _record(viewer, {viewer.dark.id: 1, viewer.limit.id: 1})
    html = client.get(viewer.url("?stale=unused&days=7")).get_data(as_text=True)
    assert "No feature went unevaluated for 7 days." in html


@pytest.mark.parametrize(
    ("query", "message"),
    [("stale=unused&days=0", "Between 1 and 3650 days"),
     ("stale=unused&days=9999", "Between 1 and 3650 days"),
     ("stale=unused&days=x", "Not a valid integer"),
     ("stale=all", "Not a valid choice")],
)  # fmt: skip
def test_features_list__bad_stale_filter__422_inline_and_unfiltered(client, viewer, query, message):
    response = client.get(viewer.url("?" + query))
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert message in html and 'id="stale-filter-error"' in html
    assert f'id="feature-{viewer.dark.id}"' in html and f'id="feature-{viewer.limit.id}"' in html


def test_features_row__toggle_partial__keeps_usage_column(client, auth, world):
    auth.login("editor@example.com")
    _record(world, {world.dark.id: 9})
    response = client.post(
        world.url(f"/{world.dark.id}/enabled"), data={"enabled": "true", "version": "1"},
        headers=HX,
    )  # fmt: skip
    assert response.status_code == 200
    assert '<span class="usage-total">9</span>' in _cell(
        response.get_data(as_text=True), world.dark.id
    )


def test_feature_page__chart_and_usage_per_environment(client, viewer):
    _record(viewer, {viewer.dark.id: 6})
    _record(viewer, {viewer.dark.id: 2}, env=viewer.prod)
    html = client.get(viewer.url(f"/{viewer.dark.id}")).get_data(as_text=True)
    card = html.split('id="feature-usage"', 1)[1].split("</section>", 1)[0]
    chart = card.split('id="usage-chart"', 1)[1].split("</svg>", 1)[0]
    assert _bars(chart)[-1] == 6 and sum(_bars(chart)) == 6
    dev = card.split(f'id="usage-environment-{viewer.env.id}"', 1)[1].split("</tr>", 1)[0]
    prod = card.split(f'id="usage-environment-{viewer.prod.id}"', 1)[1].split("</tr>", 1)[0]
    assert '<td class="usage-total">6</td>' in dev
    assert '<td class="usage-total">2</td>' in prod
    assert "style=" not in card and "<script" not in card  # the CSP allows neither


def test_identity_page__seen_by_this_identity(client, viewer):
    alice = db.session.query(Identity).filter_by(identifier="alice").one()
    buffer = UsageBuffer(db.engine, interval=None)
    buffer.add_served(
        viewer.env.id, alice.id,
        [Served(viewer.limit.id, True, 1000, None), Served(viewer.dark.id, False, "b", "arm-b")],
        utcnow(),
    )  # fmt: skip
    buffer.flush()
    html = client.get(f"/environments/{viewer.env.id}/identities/{alice.id}").get_data(as_text=True)
    section = html.split('id="identity-seen"', 1)[1].split("</section>", 1)[0]
    rows = re.findall(r'<tr class="seen-row".*?</tr>', section, re.S)
    assert len(rows) == 2
    assert "dark_mode" in rows[0] and "<code>arm-b</code>" in rows[0]
    assert '<code class="value value-string"' in rows[0]
    assert "max_upload" in rows[1] and '<code class="value value-number">1000</code>' in rows[1]


def test_identity_page__nothing_seen__says_so(client, viewer):
    alice = db.session.query(Identity).filter_by(identifier="alice").one()
    html = client.get(f"/environments/{viewer.env.id}/identities/{alice.id}").get_data(as_text=True)
    assert 'id="seen-empty"' in html


def _colour(world):
    feature = make_feature(world.project, "colour", value="green", type="MULTIVARIATE")
    db.session.commit()
    return feature


def test_option__create_with_key__shown_and_audited(client, auth, world):
    auth.login("editor@example.com")
    feature = _colour(world)
    response = client.post(
        world.url(f"/{feature.id}/options"),
        data={"value_kind": "string", "value": "Blue", "default_allocation": "10", "key": "arm-b"},
        headers=HX,
    )
    body = assert_partial(response, "feature-options")
    assert '<td class="option-key"><code>arm-b</code></td>' in body
    response = client.post(
        world.url(f"/{feature.id}/options"),
        data={"value_kind": "string", "value": "Red", "default_allocation": "10", "key": ""},
        headers=HX,
    )
    assert '<td class="option-key"><code>red</code></td>' in response.get_data(as_text=True)


def test_option__edit_key__saved_and_bad_key_422_inline(client, auth, world):
    auth.login("editor@example.com")
    feature = _colour(world)
    blue = feature_options.add_option(feature, "string", "blue", 10, None)
    feature_options.add_option(feature, "string", "red", 10, None)
    url = world.url(f"/{feature.id}/options/{blue.id}")
    form = client.get(url + "/edit", headers=HX).get_data(as_text=True)
    assert 'id="option-edit-key"' in form and 'value="blue"' in form
    response = client.put(
        url, data={"value_kind": "string", "value": "blue", "key": "red"}, headers=HX
    )
    assert response.status_code == 422
    assert "Another option of this feature has the key red" in response.get_data(as_text=True)
    response = client.put(
        url, data={"value_kind": "string", "value": "blue", "key": "treatment"}, headers=HX
    )
    assert response.status_code == 200
    db.session.expire_all()
    assert db.session.get(type(blue), blue.id).key == "treatment"
