"""A restored world is the world a fresh build makes (``tests/worlds.py``).

For each world the walks build once per process: build it afresh on an empty database and
dump every table (``dbdump.dump``) and id counter; empty the database, restore the snapshot
and dump again. Both must hold the same rows, cell for cell with the same types, except for
the cells that depend on the moment or on chance (timestamps, random keys and tokens, and
what is derived from them): those must differ by at most ``AT_MOST_APART`` in time, and
the tokens of the worlds last a day or more, so a restored world is as usable as a fresh one.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from tests import speedups, worlds
from tests.hardening import routes_table
from tests.hardening import test_audit_completeness as audit_walk
from tests.hardening import test_escaping as escaping_walk
from tests.hardening import test_hostile_input as hostile_walk
from tests.hardening import test_id_ranges as id_walk
from tests.hardening import test_sql_injection as sql_walk
from tests.hardening.dbdump import dump
from webapp.extensions import db
from webapp.services import people

# The snapshot and restore code differ per database: runs on SQLite and on PostgreSQL
# (each world on the databases its walk runs on).
pytestmark = pytest.mark.databases("sqlite", "postgres")

# Each world, its builder, and the databases its walks restore it on (the walk module's
# marker; the routes world is restored on both by test_id_ranges).
WORLDS: dict[str, tuple[Callable[[], Any], tuple[str, ...]]] = {
    "hostile": (hostile_walk.build_logged_in_world, hostile_walk.pytestmark.args),
    "routes": (routes_table.build_world, ("sqlite", "postgres")),
    "routes_admin": (id_walk.build_logged_in_world, id_walk.pytestmark.args),
    "sql_injection": (sql_walk.build_world, sql_walk.pytestmark.args),
    "escaping": (escaping_walk.build_hostile_world, escaping_walk.pytestmark.args),
    "audit": (audit_walk.build_world, audit_walk.pytestmark.args),
}
CASES = [(database, key) for key, (_, names) in sorted(WORLDS.items()) for database in names]
# A run takes minutes; the shortest-lived token of a world (a password reset) lasts a day.
AT_MOST_APART = timedelta(hours=6)
WHEN = "the moment it was made"
RANDOM = "random on purpose"
# Cells made from the clock or from chance, "table.column" (or "table.column.key" inside a
# JSON column) -> why they may differ between two builds. Any other difference fails.
MOMENT_OR_CHANCE: dict[str, str] = {
    **{f"{table}.{column}": WHEN for table, columns in {
        "organisations": ("created_at", "updated_at"),
        "projects": ("created_at", "updated_at"),
        "environments": ("created_at", "updated_at", "revised_at"),
        "users": ("created_at", "last_login_at"),
        "features": ("created_at", "updated_at"),
        "feature_states": ("created_at", "updated_at"),
        "multivariate_options": ("created_at", "updated_at"),
        "segments": ("created_at", "updated_at"),
        "segment_overrides": ("created_at", "updated_at"),
        "identities": ("created_at", "last_seen_at"),
        "traits": ("created_at", "updated_at"),
        "identity_overrides": ("created_at", "updated_at"),
        "identity_links": ("created_at",),
        "server_keys": ("created_at", "revoked_at"),
        "account_tokens": ("created_at", "expires_at"),
        "audit_events": ("created_at", "after.started_at", "after.expires"),
        "experiments": ("started_at",),
        "flag_seen": ("first_seen_at", "last_seen_at"),
        "flag_values_daily": ("first_at", "last_at"),
    }.items() for column in columns},
    "users.password_hash": "salted",
    "environments.client_key": RANDOM,
    "server_keys.key": RANDOM,
    "audit_events.after.key_prefix": "the start of a random server key",
    "account_tokens.token_hash": "the hash of a random token",
    "feature_states.hash_key": "a random hashing seed (buckets stay put when rows change)",
    "segment_overrides.hash_key": "a random hashing seed",
    "identity_overrides.hash_key": "a random hashing seed",
    "multivariate_allocations.seed": "a random hashing seed",
}  # fmt: skip


def empty_database(app: Flask, database: str, request: pytest.FixtureRequest) -> None:
    db.session.remove()
    if database == "sqlite":
        speedups.create_sqlite_schema(app)
    else:
        request.getfixturevalue("postgres_schema").empty(app)


def differences(fresh: dict[str, list[Any]], restored: dict[str, list[Any]]) -> list[str]:
    """Name each cell that differs and may not (or whose moments are too far apart)."""
    assert fresh.keys() == restored.keys()
    found = []
    for table, rows in fresh.items():
        columns = list(db.metadata.tables[table].columns.keys())
        if len(rows) != len(restored[table]):
            found.append(f"{table}: {len(rows)} rows fresh, {len(restored[table])} restored")
            continue
        for row, again in zip(rows, restored[table], strict=True):
            for column, cell, other in zip(columns, row, again, strict=True):
                found += cell_differences(f"{table}.{column}", cell, other)
    return found


def cell_differences(name: str, cell: Any, other: Any) -> list[str]:
    if type(cell) is not type(other):  # 1 == True == 1.0 in Python: compare types too
        return [f"{name}: {cell!r} fresh, {other!r} restored"]
    if cell == other:
        return []
    if isinstance(cell, dict) and cell.keys() == other.keys():  # a JSON column
        return [
            problem
            for key in cell
            for problem in cell_differences(f"{name}.{key}", cell[key], other[key])
        ]
    if name not in MOMENT_OR_CHANCE:
        return [f"{name}: {cell!r} fresh, {other!r} restored"]
    if isinstance(cell, str) and MOMENT_OR_CHANCE[name] == WHEN:
        cell, other = moment(cell), moment(other)
    if isinstance(cell, datetime) and abs(cell - other) > AT_MOST_APART:
        return [f"{name}: {cell} fresh and {other} restored are too far apart"]
    return []


def moment(text: str) -> datetime:
    """Read a moment stored as text: ISO 8601, or as audit values show it (``… 14:05 UTC``)."""
    return datetime.fromisoformat(text.removesuffix(" UTC"))


def test_every_restored_world__is_guarded_here() -> None:
    # Given every world key a test module passes to restore_or_build
    tests_root = Path(__file__).resolve().parent.parent
    used = {
        match.group(1)
        for path in tests_root.rglob("*.py")
        if path.name != "worlds.py"
        for match in re.finditer(r'restore_or_build\(\s*"([a-z0-9_]+)"', path.read_text())
    }
    # Then each is compared with a fresh build below (a new world is guarded once listed)
    assert used, "found no restore_or_build call: has the helper been renamed?"
    assert used <= set(WORLDS), f"worlds restored but not guarded: {sorted(used - set(WORLDS))}"


def test_moments__apart__less_than_the_shortest_token_lifetime() -> None:
    assert min(people.RESET_LIFETIME, people.INVITATION_LIFETIME) > AT_MOST_APART


@pytest.mark.parametrize(("database", "key"), CASES, ids=[f"{d}-{k}" for d, k in CASES])
def test_restored_world__equals_a_fresh_build(
    app: Flask, database: str, request: pytest.FixtureRequest, key: str
) -> None:
    # Given the world's snapshot (built by this test or an earlier one of the process)
    build = WORLDS[key][0]
    worlds.restore_or_build(key, build)

    # When the world is built afresh on an empty database, then restored on an empty one
    empty_database(app, database, request)
    build()
    db.session.commit()
    fresh, fresh_counters = dump(), worlds.sequences()
    empty_database(app, database, request)
    worlds.restore_or_build(key, build)
    restored, restored_counters = dump(), worlds.sequences()

    # Then they hold the same rows and the next insert gets the same id
    assert sum(map(len, restored.values())) > 10, f"{key}: the restored world is empty"
    assert restored_counters == fresh_counters
    found = differences(fresh, restored)
    assert not found, f"{key}: " + "\n".join(found)
