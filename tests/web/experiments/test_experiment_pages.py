"""Experiment pages: the link from the feature, start/stop with inline errors, roles, the
results table and verdict, and the audit trail."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from tests.factories import experiments_make_world, make_feature, make_identity, make_user
from webapp.clock import utcnow
from webapp.extensions import db
from webapp.models import AuditEvent
from webapp.models.experiment import Experiment
from webapp.services.experiments import lifecycle
from webapp.services.experiments.arms import option_key
from webapp.services.experiments.event_buffer import app_buffer
from webapp.services.experiments.events import FLAG_EXPOSURE_EVENT, SdkEvent

# Pages and rules: runs once, on SQLite (storage runs on both in tests/services).
pytestmark = pytest.mark.databases("sqlite")


@pytest.fixture
def world(app):
    w = experiments_make_world()
    make_user("viewer@example.com", "viewer", w["project"])
    db.session.commit()
    w["env_url"] = f"/environments/{w['environment'].id}"
    w["list_url"] = f"{w['env_url']}/features/{w['feature'].id}/experiments"
    w["page_url"] = f"{w['env_url']}/experiments/{w['experiment'].id}"
    return w


def login(client, email):
    response = client.post("/login", data={"email": email, "password": "password123"})
    assert response.status_code == 302


def stop(world):
    lifecycle.stop_experiment(world["environment"], world["experiment"].id, None, utcnow())


def test_feature_page__multivariate__links_to_its_experiments(client, world):
    login(client, "viewer@example.com")
    page = client.get(f"{world['env_url']}/features/{world['feature'].id}").get_data(as_text=True)
    assert f'href="{world["list_url"]}"' in page


def test_feature_page__standard__has_no_experiment_link(client, world):
    plain = make_feature(world["project"], "plain")
    db.session.commit()
    login(client, "viewer@example.com")
    page = client.get(f"{world['env_url']}/features/{plain.id}").get_data(as_text=True)
    assert 'id="feature-experiments"' not in page


def test_list__viewer__sees_experiments_but_no_start_form(client, world):
    login(client, "viewer@example.com")
    page = client.get(world["list_url"]).get_data(as_text=True)
    assert "Button colour" in page and f'href="{world["page_url"]}"' in page
    assert 'id="experiment-start"' not in page


def test_list__editor_while_one_runs__says_stop_it_first(client, world):
    login(client, "editor@example.com")
    page = client.get(world["list_url"]).get_data(as_text=True)
    assert "is running; stop it before starting another" in page
    assert 'id="experiment-form"' not in page


def test_start__valid__redirects_to_the_new_page_and_audits(client, world):
    stop(world)
    login(client, "editor@example.com")
    response = client.post(
        world["list_url"],
        data={"name": "Round two", "goal_event": "signup", "segment_id": str(world["segment"].id)},
    )
    assert response.status_code == 302
    started = db.session.scalar(select(Experiment).where(Experiment.name == "Round two"))
    assert response.headers["Location"].endswith(f"/experiments/{started.id}")
    assert (started.goal_event, started.segment_id) == ("signup", world["segment"].id)
    event = db.session.scalar(
        select(AuditEvent).where(AuditEvent.action == "start").order_by(AuditEvent.id.desc())
    )
    assert event.object_id == str(started.id) and event.actor_label == "editor@example.com"
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "identities in the segment Pro users" in page


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "", "goal_event": "signup"}, "Give the experiment a name"),
        ({"name": "x", "goal_event": ""}, "Name the goal event"),
        ({"name": "x" * 201, "goal_event": "signup"}, "cannot be longer than 200 characters"),
        ({"name": "x", "goal_event": "$flag_exposure"}, "Names starting with $ are the SDK"),
        ({"name": "x", "goal_event": "s", "segment_id": "999999"}, "No such segment"),
        ({"name": "x", "goal_event": "s", "segment_id": "-1"}, "not found"),
    ],
)
def test_start__invalid__422_with_the_message_inline(client, world, data, message):
    stop(world)
    login(client, "editor@example.com")
    response = client.post(world["list_url"], data=data)
    assert response.status_code == 422
    page = response.get_data(as_text=True).replace("&#39;", "'")
    assert message in page
    assert 'id="experiment-form"' in page  # the form stays, with what was typed
    assert db.session.scalar(select(Experiment).where(Experiment.name == "x")) is None


def test_start__while_one_runs__409_inline(client, world):
    login(client, "editor@example.com")
    response = client.post(world["list_url"], data={"name": "Again", "goal_event": "purchase"})
    assert response.status_code == 409
    assert "already runs on this feature" in response.get_data(as_text=True)


def test_start_and_stop__viewer__forbidden(client, world):
    login(client, "viewer@example.com")
    assert client.post(world["list_url"], data={"name": "n", "goal_event": "g"}).status_code == 403
    assert client.post(f"{world['page_url']}/stop").status_code == 403
    assert db.session.get(Experiment, world["experiment"].id).running


def test_stop__editor__stops_and_the_page_says_so(client, world):
    login(client, "editor@example.com")
    response = client.post(f"{world['page_url']}/stop")
    assert response.status_code == 302
    db.session.expire_all()
    assert not db.session.get(Experiment, world["experiment"].id).running
    page = client.get(world["page_url"]).get_data(as_text=True)
    assert "stopped" in page and 'id="experiment-stop"' not in page
    again = client.post(f"{world['page_url']}/stop", follow_redirects=True)
    assert "already stopped" in again.get_data(as_text=True)


def test_page__another_environments_experiment__404(client, world):
    from tests.factories import make_environment

    other = make_environment(world["project"], "Production")
    db.session.commit()
    login(client, "viewer@example.com")
    assert (
        client.get(f"/environments/{other.id}/experiments/{world['experiment'].id}").status_code
        == 404
    )


def test_page__results__every_variant_with_counts_rate_and_verdict(client, world):
    # Given 200 identities per arm; red converts 30 %, control and green 10 %
    red, green = option_key(world["red"]), option_key(world["green"])
    events = []
    for arm, rate in (("control", 10), (red, 30), (green, 10)):
        for index in range(200):
            identifier = f"{arm}-{index}"
            make_identity(world["environment"], identifier)
            events.append(SdkEvent(FLAG_EXPOSURE_EVENT, identifier, "checkout", arm, None))
            if index % 100 < rate:
                events.append(SdkEvent("purchase", identifier, None, None, None))
    db.session.commit()
    app_buffer().add(world["environment"].id, events, utcnow())
    app_buffer().flush()
    # When
    login(client, "viewer@example.com")
    page = client.get(world["page_url"]).get_data(as_text=True)
    # Then
    rows = dict(re.findall(r'data-variant="([^"]+)">(.*?)</tr>', page, re.S))
    assert list(rows) == ["control", red, green]
    assert ">200<" in rows["control"] and ">20<" in rows["control"] and "10.0%" in rows["control"]
    assert ">60<" in rows[red] and "30.0%" in rows[red] and "better than control" in rows[red]
    assert "no clear difference" in rows[green]
    assert '"red"' in rows[red] or "red" in rows[red]  # the option's value is shown
    assert f"{red} (“red”) beats control (“blue”)" in page
    assert "600 exposed identities" in page


def test_page__no_data__says_not_enough_data_yet(client, world):
    login(client, "viewer@example.com")
    page = client.get(world["page_url"]).get_data(as_text=True)
    assert "Not enough data yet" in page
    assert page.count('class="num exposures">0<') == 3


def test_page__reads_counters_only__never_the_per_identity_rows(client, world, app):
    """What keeps the page fast at any scale: no query touches exposures or conversions."""
    from sqlalchemy import event

    from webapp.extensions import db as database

    login(client, "viewer@example.com")
    statements = []

    def remember(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(database.engine, "before_cursor_execute", remember)
    try:
        assert client.get(world["page_url"]).status_code == 200
    finally:
        event.remove(database.engine, "before_cursor_execute", remember)
    assert any("experiment_arms" in s for s in statements)
    per_identity = ("experiment_exposures", "experiment_conversions")
    assert not [s for s in statements if any(table in s for table in per_identity)]
    assert len(statements) <= 15
