"""Usage storage and reads: batched upserts, reports, stale flags, retention, variant keys."""

from __future__ import annotations

import copy
import json
import os
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.factories import make_environment, make_feature, make_identity, make_project
from webapp.extensions import db
from webapp.models import (
    FlagSeen,
    FlagUsage,
    FlagUsageDaily,
    FlagValuesDaily,
    MultivariateOption,
    default_option_key,
    state_key,
)
from webapp.services import documents
from webapp.services.errors import ValidationError
from webapp.services.features import feature_options
from webapp.services.usage import reports, retention
from webapp.services.usage.recorder import Served, UsageBuffer, hour_of

# Database behaviour (upserts, grouped queries, batched deletes, import/export).
pytestmark = pytest.mark.databases("sqlite", "postgres")

NOW = datetime(2026, 12, 5, 14, 30, tzinfo=UTC)
DATA = Path(__file__).resolve().parent.parent / "data"


@pytest.fixture
def world(app):
    project = make_project("Usage")
    env = make_environment(project, "Production")
    other = make_environment(project, "Staging")
    dark = make_feature(project, "dark_mode", enabled=True)
    limit = make_feature(project, "limit", enabled=True, value=5)
    alice = make_identity(env, "alice")
    bob = make_identity(env, "bob")
    db.session.commit()
    return type("World", (), {
        "env": env, "other": other, "dark": dark, "limit": limit, "alice": alice, "bob": bob,
    })  # fmt: skip


def _buffer():
    return UsageBuffer(db.engine, interval=None)


def _serve(buffer, world, identity, feature, enabled, value, when, variant=None):
    buffer.add_served(
        world.env.id, identity.id, [Served(feature.id, enabled, value, variant)], when
    )


def _usage_rows():
    db.session.expire_all()
    return sorted(
        (r.environment_id, r.feature_id, r.hour, r.count)
        for r in db.session.scalars(select(FlagUsage))
    )


def _midnight(moment):
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def _value_rows():
    db.session.expire_all()
    return sorted(
        (r.feature_id, r.day, r.enabled, r.value_type, r.value_text, r.count, r.first_at,
         r.last_at)
        for r in db.session.scalars(select(FlagValuesDaily))
    )  # fmt: skip


def _constant(world, feature, days=30):
    """Return the constant-value evidence of one feature, or None."""
    return reports.stale_flags(world.env.id, [feature.id], "constant", days, NOW).flags.get(
        feature.id
    )


# ---- the buffer and its upserts -----------------------------------------------------


def test_buffer__counts_over_flushes__one_row_per_hour_summed(world):
    buffer = _buffer()
    for moment in (NOW, NOW + timedelta(minutes=10)):
        buffer.add_counts(world.env.id, {world.dark.id: 3, world.limit.id: 1}, moment)
        buffer.flush()
    buffer.add_counts(world.env.id, {world.dark.id: 2}, NOW + timedelta(hours=1))
    buffer.flush()
    hour = hour_of(NOW)
    assert _usage_rows() == sorted([
        (world.env.id, world.dark.id, hour, 6),
        (world.env.id, world.limit.id, hour, 2),
        (world.env.id, world.dark.id, hour + timedelta(hours=1), 2),
    ])  # fmt: skip
    assert buffer.pending() == 0
    # The day rows hold the same sums, and the latest hour counted.
    daily = sorted(
        (r.feature_id, r.day, r.count, r.last_hour)
        for r in db.session.scalars(select(FlagUsageDaily))
    )
    midnight = hour.replace(hour=0)
    assert daily == sorted([
        (world.dark.id, midnight, 8, hour + timedelta(hours=1)),
        (world.limit.id, midnight, 2, hour),
    ])  # fmt: skip


def test_buffer__seen__first_seen_kept_last_value_wins(world):
    buffer = _buffer()
    _serve(buffer, world, world.alice, world.limit, True, 5, NOW)
    buffer.flush()
    later = NOW + timedelta(hours=2)
    buffer.add_served(
        world.env.id, world.alice.id, [Served(world.limit.id, False, "5", None)], later
    )
    buffer.flush()
    db.session.expire_all()
    (row,) = db.session.scalars(select(FlagSeen)).all()
    assert (row.first_seen_at, row.last_seen_at) == (NOW, later)
    # Typed: the string "5" replaced the integer 5.
    assert (row.enabled, row.value_type, row.value) == (False, "string", "5")
    assert row.variant == ""


def test_buffer__one_row_per_variant(world):
    buffer = _buffer()
    buffer.add_served(world.env.id, world.alice.id, [Served(world.dark.id, True, "a", "a")], NOW)
    buffer.add_served(world.env.id, world.alice.id, [Served(world.dark.id, True, "b", "b")], NOW)
    buffer.flush()
    variants = db.session.scalars(select(FlagSeen.variant).order_by(FlagSeen.variant)).all()
    assert variants == ["a", "b"]


def test_buffer__deleted_feature_or_identity__other_rows_still_written(world):
    buffer = _buffer()
    served = [Served(world.dark.id, True, None, None), Served(world.limit.id, True, 5, None)]
    buffer.add_served(world.env.id, world.alice.id, served, NOW)
    buffer.add_served(world.env.id, world.bob.id, served, NOW)
    db.session.delete(world.limit)
    db.session.delete(world.bob)
    db.session.commit()
    buffer.flush()
    assert _usage_rows() == [(world.env.id, world.dark.id, hour_of(NOW), 2)]
    assert db.session.execute(select(FlagSeen.identity_id, FlagSeen.feature_id)).all() == [
        (world.alice.id, world.dark.id)
    ]
    # The served states keep no identity: bob's evaluation still counts; limit's row went.
    assert _value_rows() == [(world.dark.id, _midnight(NOW), True, "null", None, 2, NOW, NOW)]


def test_buffer__background_thread__flushes_on_size(world):
    buffer = UsageBuffer(db.engine, interval=60, max_keys=2)
    try:
        buffer.add_counts(world.env.id, {world.dark.id: 1, world.limit.id: 1}, NOW)
        from tests.conftest import eventually

        eventually(lambda: buffer.pending() == 0 and len(_usage_rows()) == 2)
    finally:
        buffer.stop()


def test_buffer__hour_buckets__same_as_hour_of_across_hours_and_zones(world):
    """The buffer reuses the last UTC hour: moving on, going back, and other zones (their
    own hour_of) bucket exactly as hour_of does."""
    india = timezone(timedelta(hours=5, minutes=30))
    moments = [
        NOW, NOW + timedelta(minutes=29), NOW + timedelta(minutes=30),  # 15:00 UTC
        NOW - timedelta(hours=3), NOW.astimezone(india), NOW.replace(tzinfo=None), NOW,
    ]  # fmt: skip
    buffer = _buffer()
    expected: dict[datetime, int] = {}
    for moment in moments:
        buffer.add_counts(world.env.id, {world.dark.id: 1}, moment)
        expected[hour_of(moment)] = expected.get(hour_of(moment), 0) + 1
    assert len(expected) == 5  # 14:00, 15:00, 11:00 UTC, 14:30 UTC (India), naive 14:00
    assert buffer._counts == {(world.env.id, world.dark.id, h): n for h, n in expected.items()}


def test_buffer__forked_child__starts_its_own_flush_thread(world):
    buffer = UsageBuffer(db.engine, interval=60)
    try:
        buffer.add_counts(world.env.id, {world.dark.id: 1}, NOW)
        parent_thread = buffer._thread
        assert parent_thread is not None and parent_thread.is_alive()
        pid = os.fork()
        if pid == 0:  # the child: the parent's thread object is there, its thread is not
            buffer.add_counts(world.env.id, {world.dark.id: 1}, NOW)
            ok = buffer._thread is not parent_thread and buffer._thread.is_alive()
            os._exit(0 if ok else 1)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        buffer.add_counts(world.env.id, {world.dark.id: 1}, NOW)
        assert buffer._thread is parent_thread  # the parent keeps its thread
    finally:
        buffer.stop()


# ---- reports -------------------------------------------------------------------------


def test_feature_summaries__thirty_days_totals_and_last_evaluated(world):
    buffer = _buffer()
    buffer.add_counts(world.env.id, {world.dark.id: 4}, NOW)
    buffer.add_counts(world.env.id, {world.dark.id: 1}, NOW - timedelta(days=3, hours=2))
    buffer.add_counts(world.env.id, {world.dark.id: 100}, NOW - timedelta(days=45))
    buffer.add_counts(world.other.id, {world.dark.id: 9}, NOW)
    buffer.add_counts(world.env.id, {world.limit.id: 7}, NOW - timedelta(days=40))
    buffer.flush()
    summaries = reports.feature_summaries(world.env.id, [world.dark.id, world.limit.id], NOW)
    dark = summaries[world.dark.id]
    assert len(dark.days) == 30
    assert dark.days[-1].day == NOW.date() and dark.days[-1].count == 4
    assert dark.days[-4].count == 1
    assert dark.total == 5  # the 45-day-old count is outside the chart
    assert dark.last_evaluated == hour_of(NOW)
    limit = summaries[world.limit.id]
    assert limit.total == 0 and limit.peak == 0
    # Last evaluated comes from before the chart when nothing is in it.
    assert limit.last_evaluated == hour_of(NOW - timedelta(days=40))
    by_env = reports.feature_usage_by_environment([world.env, world.other], world.dark.id, NOW)
    assert [(u.environment.name, u.summary.total) for u in by_env] == [
        ("Production", 5), ("Staging", 9),
    ]  # fmt: skip


def test_stale__unused__lists_features_without_recent_evaluations(world):
    buffer = _buffer()
    buffer.add_counts(world.env.id, {world.dark.id: 1}, NOW - timedelta(days=2))
    buffer.add_counts(world.env.id, {world.limit.id: 1}, NOW - timedelta(days=20))
    buffer.flush()
    ids = [world.dark.id, world.limit.id]
    report = reports.stale_flags(world.env.id, ids, "unused", 7, NOW)
    assert set(report.flags) == {world.limit.id}
    assert report.flags[world.limit.id].last_evaluated == hour_of(NOW - timedelta(days=20))
    assert set(reports.stale_flags(world.env.id, ids, "unused", 30, NOW).flags) == set()
    assert set(reports.stale_flags(world.other.id, ids, "unused", 30, NOW).flags) == set(ids)


def test_stale__constant__one_state_for_every_identity_long_enough(world):
    buffer = _buffer()
    long_ago = NOW - timedelta(days=40)
    for identity in (world.alice, world.bob):
        _serve(buffer, world, identity, world.limit, True, 5, long_ago)
        _serve(buffer, world, identity, world.limit, True, 5, NOW)
    # dark_mode served two values: not constant.
    _serve(buffer, world, world.alice, world.dark, True, None, long_ago)
    _serve(buffer, world, world.bob, world.dark, False, None, NOW)
    buffer.flush()
    ids = [world.dark.id, world.limit.id]
    report = reports.stale_flags(world.env.id, ids, "constant", 30, NOW)
    assert set(report.flags) == {world.limit.id}
    evidence = report.flags[world.limit.id]
    # Served on one day of the last 30 (today), the only value since 40 days ago.
    assert (evidence.days_served, evidence.enabled, evidence.value, evidence.since) == (
        1, True, 5, long_ago,
    )  # fmt: skip
    assert type(evidence.value) is int
    # Seen for 40 days: not for 60.
    assert reports.stale_flags(world.env.id, ids, "constant", 60, NOW).flags == {}


def test_stale__constant__same_text_other_type_is_two_values(world):
    buffer = _buffer()
    long_ago = NOW - timedelta(days=40)
    _serve(buffer, world, world.alice, world.limit, True, 5, long_ago)
    _serve(buffer, world, world.bob, world.limit, True, "5", NOW)
    buffer.flush()
    assert reports.stale_flags(world.env.id, [world.limit.id], "constant", 30, NOW).flags == {}


# The served states of a day (the rollup the constant filter reads).


def test_buffer__served_states__one_row_per_state_and_day_identities_counted_per_flush(world):
    buffer = _buffer()
    later = NOW + timedelta(hours=3)
    for identity in (world.alice, world.bob):
        _serve(buffer, world, identity, world.limit, True, 5, NOW)
    _serve(buffer, world, world.alice, world.limit, True, 5, later)  # same flush: once
    _serve(buffer, world, world.bob, world.dark, False, None, NOW - timedelta(days=1))
    buffer.flush()
    _serve(buffer, world, world.alice, world.limit, True, 5, NOW - timedelta(hours=1))
    buffer.flush()
    day = _midnight(NOW)
    assert _value_rows() == sorted([
        # Bob twice in the first flush (alice's last serve), alice again in the second.
        (world.limit.id, day, True, "integer", "5", 3, NOW - timedelta(hours=1), later),
        (world.dark.id, day - timedelta(days=1), False, "null", None, 1,
         NOW - timedelta(days=1), NOW - timedelta(days=1)),
    ])  # fmt: skip
    (row, *_) = [r for r in db.session.scalars(select(FlagValuesDaily)) if r.count == 3]
    assert row.state_key == state_key(True, "integer", "5") and len(row.state_key) == 32


def test_buffer__served_states__first_and_last_response_both_recorded(world):
    from types import SimpleNamespace

    served = (SimpleNamespace(name="limit", feature_id=world.limit.id),)
    buffer = _buffer()
    later = NOW + timedelta(seconds=1)
    for value, when in ((5, NOW), (6, NOW), (7, later)):
        flags = {"limit": SimpleNamespace(enabled=True, value=value, variant=None)}
        buffer.add_response(world.env.id, world.alice.id, served, flags, when)
    buffer.flush()
    # flag_seen keeps the last value; the day's states keep the first one too (not the
    # one in between: the buffer holds an identity's first and last response).
    assert [r.value for r in db.session.scalars(select(FlagSeen))] == [7]
    assert [(r[4], r[5]) for r in _value_rows()] == [("5", 1), ("7", 1)]


def test_state_key__type_enabled_and_text__all_distinguish():
    keys = {
        state_key(True, "integer", "1"), state_key(True, "boolean", "true"),
        state_key(True, "float", "1.0"), state_key(True, "string", "1"),
        state_key(True, "string", "true"), state_key(True, "null", None),
        state_key(True, "string", ""), state_key(False, "integer", "1"),
    }  # fmt: skip
    assert len(keys) == 8
    assert state_key(True, "integer", "1") == state_key(True, "integer", "1")


VALUE_KINDS = ["on", "", "true", 7, 0, -3, 2.5, 1.0, True, False, None]


@pytest.mark.parametrize("value", VALUE_KINDS, ids=repr)
def test_stale__constant__every_value_kind__served_back_with_its_type(world, value):
    buffer = _buffer()
    for when in (NOW - timedelta(days=40), NOW - timedelta(days=10), NOW):
        _serve(buffer, world, world.alice, world.limit, True, value, when)
        buffer.flush()  # days apart: flushes apart (a flush keeps an identity's first and last)
    evidence = _constant(world, world.limit)
    assert evidence is not None
    assert type(evidence.value) is type(value) and evidence.value == value
    assert (evidence.enabled, evidence.since, evidence.days_served) == (
        True, NOW - timedelta(days=40), 2,
    )  # fmt: skip


# Equal in Python (1 == True == 1.0), or the same text: still different values served.
SAME_LOOKING = [
    (1, True), (1, 1.0), (1, "1"), (True, 1.0), (True, "true"), (True, "True"), (1.0, "1.0"),
    (0, False), (0, 0.0), (None, ""), (None, "None"), (False, None), (0.0, -0.0),
]  # fmt: skip


@pytest.mark.parametrize(("first", "second"), SAME_LOOKING, ids=repr)
def test_stale__constant__same_looking_values__two_states(world, first, second):
    buffer = _buffer()
    long_ago = NOW - timedelta(days=40)
    for identity in (world.alice, world.bob):
        _serve(buffer, world, identity, world.limit, True, first, long_ago)
    # Two states on one day (the same day, one identity each).
    _serve(buffer, world, world.alice, world.limit, True, first, NOW)
    _serve(buffer, world, world.bob, world.limit, True, second, NOW)
    # And each of them alone on a feature of its own is constant.
    _serve(buffer, world, world.alice, world.dark, True, second, long_ago)
    _serve(buffer, world, world.bob, world.dark, True, second, NOW)
    buffer.flush()
    assert len([r for r in _value_rows() if r[0] == world.limit.id and r[1] == _midnight(NOW)]) == 2
    assert _constant(world, world.limit) is None
    dark = _constant(world, world.dark)
    assert dark is not None and type(dark.value) is type(second) and dark.value == second


def test_stale__constant__enabled_differs_on_one_day__two_states(world):
    buffer = _buffer()
    _serve(buffer, world, world.alice, world.limit, True, 5, NOW - timedelta(days=40))
    buffer.flush()
    _serve(buffer, world, world.alice, world.limit, True, 5, NOW - timedelta(days=3, hours=2))
    _serve(buffer, world, world.bob, world.limit, False, 5, NOW - timedelta(days=3))
    buffer.flush()
    back = NOW - timedelta(days=2, hours=12)
    _serve(buffer, world, world.bob, world.limit, True, 5, back)
    buffer.flush()
    _serve(buffer, world, world.alice, world.limit, True, 5, NOW)
    buffer.flush()
    assert _constant(world, world.limit) is None
    # Over the last two days: one state, since bob got it back.
    evidence = _constant(world, world.limit, days=2)
    assert (evidence.enabled, evidence.value, evidence.since) == (True, 5, back)


def test_stale__constant__state_changed_before_the_cutoff__constant_since_the_change(world):
    buffer = _buffer()
    _serve(buffer, world, world.alice, world.limit, True, 5, NOW - timedelta(days=45))
    _serve(buffer, world, world.bob, world.limit, True, 5, NOW - timedelta(days=40))
    changed = NOW - timedelta(days=35)
    _serve(buffer, world, world.alice, world.limit, True, 6, changed)
    _serve(buffer, world, world.bob, world.limit, True, 6, NOW)
    buffer.flush()
    evidence = _constant(world, world.limit)
    assert (evidence.value, evidence.since, evidence.days_served) == (6, changed, 1)
    # Over 38 days the old value is inside the window: two values.
    assert _constant(world, world.limit, days=38) is None


def test_stale__constant__state_changed_after_the_cutoff__not_constant(world):
    buffer = _buffer()
    for days in (40, 20):
        _serve(buffer, world, world.alice, world.limit, True, 5, NOW - timedelta(days=days))
    _serve(buffer, world, world.bob, world.limit, True, 6, NOW)
    buffer.flush()
    assert _constant(world, world.limit) is None
    # Since the change (today) the new value alone, but not for a whole day.
    assert _constant(world, world.limit, days=1) is None


def test_stale__constant__back_to_an_earlier_value__only_since_its_return(world):
    buffer = _buffer()
    _serve(buffer, world, world.alice, world.limit, True, 5, NOW - timedelta(days=60))
    _serve(buffer, world, world.alice, world.limit, True, 6, NOW - timedelta(days=50))
    # 5 again 31 days ago, then nothing until today: 5 only since 31 days ago.
    returned = NOW - timedelta(days=31)
    _serve(buffer, world, world.bob, world.limit, True, 5, returned)
    _serve(buffer, world, world.bob, world.limit, True, 5, NOW)
    buffer.flush()
    evidence = _constant(world, world.limit)
    assert (evidence.value, evidence.since) == (5, returned)
    assert _constant(world, world.limit, days=32) is None


def test_stale__constant__value_back_after_a_quiet_gap__not_constant(world):
    buffer = _buffer()
    # 6 was last served 40 days ago; 5 (served long before) only comes back today: nothing
    # says which value identities would have got in between.
    _serve(buffer, world, world.alice, world.limit, True, 5, NOW - timedelta(days=60))
    _serve(buffer, world, world.alice, world.limit, True, 6, NOW - timedelta(days=40))
    _serve(buffer, world, world.bob, world.limit, True, 5, NOW)
    buffer.flush()
    assert _constant(world, world.limit) is None


def test_stale__constant__first_seen_after_the_cutoff__not_yet(world):
    buffer = _buffer()
    first = NOW - timedelta(days=10)
    _serve(buffer, world, world.alice, world.limit, True, 5, first)
    _serve(buffer, world, world.bob, world.limit, True, 5, NOW)
    buffer.flush()
    assert _constant(world, world.limit) is None
    evidence = _constant(world, world.limit, days=7)
    assert (evidence.value, evidence.since, evidence.days_served) == (5, first, 1)


def test_stale__constant__not_served_since_the_cutoff__not_listed(world):
    buffer = _buffer()
    _serve(buffer, world, world.alice, world.limit, True, 5, NOW - timedelta(days=40))
    _serve(buffer, world, world.alice, world.limit, True, 5, NOW - timedelta(days=31))
    buffer.flush()
    # Nobody was served it in the last 30 days: "unused", not "constant".
    assert _constant(world, world.limit) is None
    assert _constant(world, world.limit, days=35) is not None


def test_stale__constant__other_environment_and_unwanted_features__ignored(world):
    buffer = _buffer()
    for when in (NOW - timedelta(days=40), NOW):
        _serve(buffer, world, world.alice, world.limit, True, 5, when)
    buffer.flush()
    assert reports.stale_flags(world.other.id, [world.limit.id], "constant", 30, NOW).flags == {}
    assert reports.stale_flags(world.env.id, [world.dark.id], "constant", 30, NOW).flags == {}


def test_seen_by_identity__rows_by_feature_name(world):
    buffer = _buffer()
    buffer.add_served(
        world.env.id, world.alice.id,
        [Served(world.limit.id, True, 5, None), Served(world.dark.id, False, None, "blue")], NOW,
    )  # fmt: skip
    buffer.flush()
    seen = reports.seen_by_identity(world.alice.id)
    assert [(s.feature_name, s.variant, s.enabled, s.value) for s in seen] == [
        ("dark_mode", "blue", False, None), ("limit", None, True, 5),
    ]  # fmt: skip
    assert reports.seen_by_identity(world.bob.id) == []


# ---- retention -----------------------------------------------------------------------


def test_prune__deletes_only_older_rows_in_batches(world):
    buffer = _buffer()
    for days in range(0, 100, 10):
        moment = NOW - timedelta(days=days)
        buffer.add_counts(world.env.id, {world.dark.id: 1, world.limit.id: 1}, moment)
    _serve(buffer, world, world.alice, world.dark, True, None, NOW - timedelta(days=95))
    _serve(buffer, world, world.bob, world.dark, True, None, NOW)
    buffer.flush()
    result = retention.prune_usage(NOW, 45, batch=3)
    # 5 old hours x 2 features, and the hour of the 95-day-old identify.
    assert (result.counts, result.seen) == (11, 1)
    assert {h for *_, h, _c in _usage_rows()} == {
        hour_of(NOW - timedelta(days=d)) for d in range(0, 50, 10)
    }
    assert db.session.scalars(select(FlagSeen.identity_id)).all() == [world.bob.id]
    # The served states go by whole days before the cut-off (NOW - 45 days, 14:30).
    assert [r[1] for r in _value_rows()] == [_midnight(NOW)]
    with pytest.raises(ValueError):
        retention.prune_usage(NOW, 0)


# ---- variant keys -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "taken", "expected"),
    [
        ("Blue", set(), "blue"),
        ("Dark Blue!", set(), "dark-blue"),
        ("blue", {"blue"}, "variant-2"),
        ("control", set(), "variant-1"),
        ("", set(), "variant-1"),
        (None, {"a", "variant-3"}, "variant-4"),
        (42, set(), "42"),
        (True, set(), "true"),
        ("✓✓", set(), "variant-1"),
    ],
)
def test_default_option_key__from_value_else_numbered(value, taken, expected):
    assert default_option_key(value, taken) == expected


def _multivariate(world):
    feature = make_feature(world.env.project, "colour", value="green", type="MULTIVARIATE")
    db.session.commit()
    return feature


def test_option_key__generated_unique_and_editable(world):
    feature = _multivariate(world)
    first = feature_options.add_option(feature, "string", "Blue", 10, None)
    second = feature_options.add_option(feature, "string", "blue", 10, None)
    named = feature_options.add_option(feature, "string", "x", 10, None, key="treatment-b")
    assert (first.key, second.key, named.key) == ("blue", "variant-2", "treatment-b")
    feature_options.update_option(feature, second.id, "string", "blue", None, key="b.2")
    assert db.session.get(MultivariateOption, second.id).key == "b.2"


@pytest.mark.parametrize(
    ("key", "message"),
    [("control", "control"), ("blue", "Another option"), ("-x", "letters"), ("a b", "letters"),
     ("x" * 101, "letters")],
)  # fmt: skip
def test_option_key__bad_key__refused(world, key, message):
    feature = _multivariate(world)
    feature_options.add_option(feature, "string", "blue", 10, None)
    with pytest.raises(ValidationError, match=message) as caught:
        feature_options.add_option(feature, "string", "red", 10, None, key=key)
    assert caught.value.field == "key"
    assert len(feature.options) == 1


def _keys(doc):
    return sorted(
        (state["feature"]["name"], mv["multivariate_feature_option"]["id"],
         mv["multivariate_feature_option"].get("key"))
        for state in doc["feature_states"]
        for mv in state.get("multivariate_feature_state_values") or []
    )  # fmt: skip


def test_variant_keys__survive_import_export_import(app):
    doc = json.loads((DATA / "flagsmith_environment_rich.json").read_text())
    keyed = copy.deepcopy(doc)
    for state in keyed["feature_states"]:
        for index, mv in enumerate(state.get("multivariate_feature_state_values") or []):
            mv["multivariate_feature_option"]["key"] = f"arm-{index}.{state['feature']['name']}"
    documents.import_environment_document(keyed)
    exported = documents.export_environment(keyed["api_key"])
    assert _keys(exported) == _keys(keyed)
    assert all(key is not None for *_, key in _keys(exported))
    # The export imported as a new environment of a new project: the same keys again.
    exported["api_key"] = "fresh-environment-key"
    exported["project"]["name"] = "Copied project"
    documents.import_environment_document(exported)
    again = documents.export_environment("fresh-environment-key")
    assert _keys(again) == _keys(keyed)


def test_variant_keys__document_without_keys__keys_generated_then_kept(app):
    doc = json.loads((DATA / "flagsmith_environment_rich.json").read_text())
    documents.import_environment_document(doc)
    exported = documents.export_environment(doc["api_key"])
    keys = _keys(exported)
    assert keys and all(key for *_, key in keys)
    documents.import_environment_document(exported)
    assert _keys(documents.export_environment(doc["api_key"])) == keys


def test_variant_keys__duplicate_in_document__refused(app):
    doc = json.loads((DATA / "flagsmith_environment_rich.json").read_text())
    for state in doc["feature_states"]:
        values = state.get("multivariate_feature_state_values") or []
        for mv in values:
            mv["multivariate_feature_option"]["key"] = "same"
    with pytest.raises(ValidationError, match="appears twice"):
        documents.import_environment_document(doc)


def test_add_response__one_interval__counts_each_response_and_keeps_first_and_last(world):
    from types import SimpleNamespace

    served = (
        SimpleNamespace(name="dark_mode", feature_id=world.dark.id),
        SimpleNamespace(name="limit", feature_id=world.limit.id),
    )

    def flags(variant, value):
        return {
            "dark_mode": SimpleNamespace(enabled=True, value=value, variant=variant),
            "limit": SimpleNamespace(enabled=True, value=5, variant=None),
        }

    buffer = _buffer()
    later = NOW + timedelta(seconds=1)
    buffer.add_response(world.env.id, world.alice.id, served, flags("a", "A"), NOW)
    buffer.add_response(world.env.id, world.alice.id, served, flags("a", "A"), NOW)
    buffer.add_response(world.env.id, world.alice.id, served, flags("b", "B"), later)
    buffer.add_response(world.env.id, None, served, flags("a", "A"), later)  # transient
    buffer.flush()
    assert _usage_rows() == sorted([
        (world.env.id, world.dark.id, hour_of(NOW), 4),
        (world.env.id, world.limit.id, hour_of(NOW), 4),
    ])  # fmt: skip
    rows = db.session.execute(
        select(FlagSeen.feature_id, FlagSeen.variant, FlagSeen.value_text, FlagSeen.first_seen_at,
               FlagSeen.last_seen_at).where(FlagSeen.identity_id == world.alice.id)
    ).all()  # fmt: skip
    assert sorted(rows) == sorted([
        (world.dark.id, "a", "A", NOW, NOW),
        (world.dark.id, "b", "B", later, later),
        (world.limit.id, "", "5", NOW, later),
    ])  # fmt: skip
