"""Experiments: lifecycle, event storage (dedup, counters), enrolment metadata, pruning."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from tests.factories import experiments_make_world, make_feature, make_identity
from webapp.clock import utcnow
from webapp.extensions import db
from webapp.models import AuditEvent
from webapp.models.experiment import (
    Experiment,
    ExperimentArm,
    ExperimentConversion,
    ExperimentExposure,
)
from webapp.services.errors import Conflict, ValidationError
from webapp.services.experiments import lifecycle, retention
from webapp.services.experiments.arms import option_key
from webapp.services.experiments.event_buffer import BufferFull, EventBuffer, app_buffer
from webapp.services.experiments.events import FLAG_EXPOSURE_EVENT, SdkEvent

# Database behaviour (ON CONFLICT inserts, counters, locking, partial unique index, pruning).
pytestmark = pytest.mark.databases("sqlite", "postgres")


@pytest.fixture
def world(app):
    w = experiments_make_world()
    for name in ("alice", "bob", "carol"):
        w[name] = make_identity(w["environment"], name)
    db.session.commit()
    return w


def exposure(identifier, variant, feature="checkout", experiment_id=None):
    return SdkEvent(FLAG_EXPOSURE_EVENT, identifier, feature, variant, experiment_id)


def goal(identifier, name="purchase", value=None):
    return SdkEvent(name, identifier, None, value, None)


def deliver(world, *events):
    buffer = app_buffer()
    buffer.add(world["environment"].id, list(events), utcnow())
    return buffer.flush()


def counters(experiment):
    rows = db.session.execute(
        select(ExperimentArm.variant, ExperimentArm.exposures, ExperimentArm.conversions).where(
            ExperimentArm.experiment_id == experiment.id
        )
    )
    return {variant: (exposed, converted) for variant, exposed, converted in rows}


def row_counts(experiment):
    """Recount from the per-identity rows: the counters must always agree with them."""
    found = {}
    for model, column in ((ExperimentExposure, 0), (ExperimentConversion, 1)):
        rows = db.session.execute(
            select(model.variant, func.count())
            .where(model.experiment_id == experiment.id)
            .group_by(model.variant)
        )
        for variant, count in rows:
            pair = list(found.get(variant, (0, 0)))
            pair[column] = count
            found[variant] = tuple(pair)
    return found


def test_store__exposures_and_goals__count_once_per_identity(world):
    # Given
    red = option_key(world["red"])
    experiment = world["experiment"]
    # When: the same exposure twice in one batch, again in a later batch, and goal events
    first = deliver(world, exposure("alice", red), exposure("alice", red),
                    exposure("bob", "control"), goal("alice"), goal("alice"))  # fmt: skip
    second = deliver(world, exposure("alice", red), goal("alice"), goal("bob", value="9.99"))
    # Then
    assert (first.exposures, first.conversions) == (2, 1)
    assert (second.exposures, second.conversions) == (0, 1)
    assert counters(experiment) == {red: (1, 1), "control": (1, 1)}
    assert row_counts(experiment) == counters(experiment)
    value = db.session.scalar(
        select(ExperimentConversion.value).where(
            ExperimentConversion.identity_id == world["bob"].id
        )
    )
    assert value == "9.99" and type(value) is str


def test_store__first_variant_wins__a_later_other_variant_is_ignored(world):
    red, green = option_key(world["red"]), option_key(world["green"])
    deliver(world, exposure("alice", red))
    deliver(world, exposure("alice", green), goal("alice"))
    assert counters(world["experiment"]) == {red: (1, 1)}


def test_store__goal_before_any_exposure__is_not_a_conversion(world):
    red = option_key(world["red"])
    stored = deliver(world, goal("alice"))
    assert (stored.exposures, stored.conversions) == (0, 0)
    deliver(world, exposure("alice", red))
    assert counters(world["experiment"]) == {red: (1, 0)}
    assert db.session.scalar(select(func.count()).select_from(ExperimentConversion)) == 0


@pytest.mark.parametrize(
    "event",
    [
        pytest.param(exposure("nobody", "control"), id="unknown identity"),
        pytest.param(exposure("alice", "control", feature="no_such_feature"), id="unknown feature"),
        pytest.param(exposure("alice", "option-999999"), id="unknown variant"),
        pytest.param(exposure("alice", None), id="no variant"),
        pytest.param(exposure(None, "control"), id="no identifier"),
        pytest.param(exposure("alice", "control", experiment_id=999999), id="other experiment"),
        pytest.param(goal("alice", name="signup"), id="not the goal event"),
    ],
)
def test_store__events_about_nothing_known__are_ignored(world, event):
    stored = deliver(world, event)
    assert (stored.exposures, stored.conversions) == (0, 0)
    assert counters(world["experiment"]) == {}


def test_store__stopped_experiment__ignores_new_events(world):
    lifecycle.stop_experiment(world["environment"], world["experiment"].id, None, utcnow())
    stored = deliver(world, exposure("alice", "control"), goal("alice"))
    assert (stored.exposures, stored.conversions) == (0, 0)


def test_store__events_of_another_environment__are_ignored(world):
    from tests.factories import make_environment

    other = make_environment(world["project"], "Production")
    make_identity(other, "alice")
    db.session.commit()
    buffer = app_buffer()
    buffer.add(other.id, [exposure("alice", "control")], utcnow())
    assert buffer.flush().exposures == 0


def test_buffer__over_capacity__refuses_and_keeps_what_it_has(app, world):
    buffer = EventBuffer(app, interval=0, capacity=3)
    buffer.add(world["environment"].id, [exposure("alice", "control")] * 3, utcnow())
    with pytest.raises(BufferFull):
        buffer.add(world["environment"].id, [exposure("bob", "control")], utcnow())
    assert buffer.pending == 3
    assert buffer.flush().exposures == 1
    assert buffer.pending == 0


def test_buffer__background_thread__writes_without_a_flush_call(app, world):
    from tests.conftest import eventually

    # Given a buffer with its flushing thread (the app's own is off in tests)
    buffer = EventBuffer(app, interval=0.02, capacity=100)
    try:
        # When a request's events are queued
        buffer.add(world["environment"].id, [exposure("alice", "control"), goal("alice")], utcnow())
        # Then the thread writes them on its own
        eventually(lambda: buffer.flushes == 1, message="the thread never wrote the events")
    finally:
        buffer.close()
    db.session.expire_all()
    assert counters(world["experiment"]) == {"control": (1, 1)}


def test_start__second_running_experiment__conflicts_until_the_first_stops(world):
    environment, feature = world["environment"], world["feature"]
    with pytest.raises(Conflict):
        lifecycle.start_experiment(environment, feature, "Again", "purchase", None, None, utcnow())
    lifecycle.stop_experiment(environment, world["experiment"].id, world["editor"], utcnow())
    again = lifecycle.start_experiment(
        environment, feature, "Again", "purchase", None, None, utcnow()
    )
    assert again.running and lifecycle.running_experiment(environment.id, feature.id) == again


def test_running_index__refuses_two_running_rows__even_past_the_service(world):
    from sqlalchemy.exc import IntegrityError

    db.session.add(
        Experiment(environment_id=world["environment"].id, feature_id=world["feature"].id,
                   name="x", goal_event="y", started_at=utcnow())
    )  # fmt: skip
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()


@pytest.mark.parametrize(
    ("name", "goal_event", "field"),
    [("", "purchase", "name"), ("   ", "purchase", "name"), ("x" * 201, "purchase", "name"),
     ("Ok", "", "goal_event"), ("Ok", "$flag_exposure", "goal_event"),
     ("Ok", "g" * 201, "goal_event"), ("bad\x00name", "purchase", "name")],
)  # fmt: skip
def test_start__bad_input__names_the_field(world, name, goal_event, field):
    lifecycle.stop_experiment(world["environment"], world["experiment"].id, None, utcnow())
    with pytest.raises(ValidationError) as caught:
        lifecycle.start_experiment(
            world["environment"], world["feature"], name, goal_event, None, None, utcnow()
        )
    assert caught.value.field == field


def test_start__standard_feature_or_foreign_segment__refused(world):
    from tests.factories import make_project, make_segment

    plain = make_feature(world["project"], "plain")
    foreign = make_segment(make_project("Other"), "Theirs")
    db.session.commit()
    with pytest.raises(ValidationError):
        lifecycle.start_experiment(world["environment"], plain, "n", "g", None, None, utcnow())
    lifecycle.stop_experiment(world["environment"], world["experiment"].id, None, utcnow())
    with pytest.raises(ValidationError) as caught:
        lifecycle.start_experiment(
            world["environment"], world["feature"], "n", "g", foreign.id, None, utcnow()
        )
    assert caught.value.field == "segment_id"


def test_start_and_stop__are_audited(world):
    experiment_id = world["experiment"].id
    lifecycle.stop_experiment(world["environment"], experiment_id, world["editor"], utcnow())
    events = db.session.execute(
        select(AuditEvent.action, AuditEvent.object_type, AuditEvent.actor_label)
        .where(AuditEvent.object_type == "experiment")
        .order_by(AuditEvent.id)
    ).all()
    assert [tuple(e) for e in events] == [
        ("start", "experiment", "editor@example.com"),
        ("stop", "experiment", "editor@example.com"),
    ]
    with pytest.raises(Conflict):
        lifecycle.stop_experiment(world["environment"], world["experiment"].id, None, utcnow())


def test_prune__experiments_stopped_long_ago__lose_rows_keep_counters(world):
    # Given: one experiment stopped 91 days ago with data, one running with data
    red = option_key(world["red"])
    deliver(world, exposure("alice", red), goal("alice"), exposure("bob", "control"))
    old = world["experiment"]
    now = utcnow()
    lifecycle.stop_experiment(world["environment"], old.id, None, now - timedelta(days=91))
    running = lifecycle.start_experiment(
        world["environment"], world["feature"], "Now", "purchase", None, None, now
    )
    deliver(world, exposure("carol", "control"))
    before = counters(old)
    # When
    deleted = retention.prune_experiments(now)
    # Then
    assert deleted == 3
    assert counters(old) == before == {red: (1, 1), "control": (1, 0)}
    assert row_counts(old) == {}
    assert row_counts(running) == {"control": (1, 0)}
    assert retention.prune_experiments(now) == 0
    assert db.session.get(Experiment, old.id).pruned_at is not None


def test_prune__recently_stopped__keeps_everything(world):
    deliver(world, exposure("alice", "control"))
    now = utcnow()
    lifecycle.stop_experiment(world["environment"], world["experiment"].id, None, now)
    assert retention.prune_experiments(now + timedelta(days=89)) == 0
    assert row_counts(world["experiment"]) == {"control": (1, 0)}


def test_identity_deleted__its_rows_go__counters_stay(world):
    deliver(world, exposure("alice", "control"), goal("alice"))
    db.session.delete(world["alice"])
    db.session.commit()
    assert row_counts(world["experiment"]) == {}
    assert counters(world["experiment"]) == {"control": (1, 1)}
