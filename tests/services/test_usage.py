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
    MultivariateOption,
    default_option_key,
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
    assert (evidence.identities, evidence.enabled, evidence.value, evidence.since) == (
        2, True, 5, long_ago,
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
