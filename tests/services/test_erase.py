"""Erasing identities (issue 18): nothing of them stays in clear, anywhere in the database.

The world gives alice a history made through the real services (traits set and changed,
overrides, a QA link, a bulk action whose search quotes her email, an earlier identity of
the same identifier that was deleted), then erases her. Every row of every table is dumped
and searched for her identifier and each trait value; bob, untouched, proves the search
finds what is there.
"""

from __future__ import annotations

import json
import re
import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from flask import current_app
from sqlalchemy import func, select, text

from tests.factories import (
    identities_make_link,
    identities_make_override,
    make_environment,
    make_feature,
    make_identity,
    make_project,
    make_user,
)
from tests.hardening.dbdump import dump
from webapp.clock import utcnow
from webapp.extensions import db
from webapp.models import (
    AuditEvent,
    Environment,
    Feature,
    Identity,
    IdentityLink,
    IdentityOverride,
    Trait,
    User,
)
from webapp.services.errors import NotFound
from webapp.services.identities import (
    editing_rights,
    erase,
    identity_overrides,
    manage,
    redaction,
    traits,
)

# Database behaviour (deletes, JSON rewrites, a whole-database dump): SQLite and PostgreSQL.
pytestmark = pytest.mark.databases("sqlite", "postgres")

ALICE = "alice.private@example.test"
# Distinctive values of every trait type, so a search of the dump cannot match by chance.
SECRETS: dict[str, Any] = {
    "email": ALICE,
    "street": "Quellenstraße 77b",
    "phone": 491701234567,
    "score": 8765.4321,
    "name": "Alíce Liddell-Private",
}
OLD_STREET = "Kastanienallee 12a"
BOB = "bob.keeps@example.test"


def _world() -> Any:
    project = make_project("Demo")
    env = make_environment(project, "Production")
    other = make_environment(project, "Staging")
    editor = make_user("editor@example.com", "editor", project)
    qa = make_user("qa@example.com", "qa", project)
    feature = make_feature(project, "welcome", enabled=False, value="hello")
    # An earlier alice, deleted from the dashboard: her delete event names her in clear.
    # (bob is made in between, so SQLite does not give alice the deleted one's id again)
    first = manage.create_identities(editor, project.id, env.id, ALICE).created[0].id
    bob = make_identity(env, BOB, {"plan": "pro", "street": "Bobweg 1"})
    manage.delete_identity(editor, project.id, env.id, first)
    alice = make_identity(env, ALICE, {"plan": "pro", "street": OLD_STREET})
    assert alice.id != first
    same_elsewhere = make_identity(other, ALICE, {"plan": "pro"})
    identities_make_override(alice, feature, True, "hi alice")
    identities_make_link(qa, alice)
    db.session.commit()
    now = utcnow()
    traits.set_trait(editor, alice, "street", SECRETS["street"], "string", now)  # old -> new
    for key in ("email", "phone", "score", "name"):
        traits.set_trait(editor, alice, key, str(SECRETS[key]), "infer", now)
    traits.set_trait(editor, bob, "email", BOB, "string", now)
    # A bulk action whose search quotes alice's email (its label keeps the search).
    request = manage.BulkRequest(action="remove_overrides", query=f'email = "{ALICE}"')
    manage.apply_bulk(editor, project.id, env.id, request, 1)
    identities_make_override(alice, feature, True, "again")
    db.session.commit()
    return project, env, alice, bob, same_elsewhere, editor


def _dump_text(skip_identity: int | None = None) -> str:
    """Every cell of every table as text (JSON columns as stored JSON).

    :param skip_identity: leave out this identity's own row (one that was not erased).
    """
    cells = []
    for table, rows in dump().items():
        for row in rows:
            if table == "identities" and row[0] == skip_identity:
                continue
            cells.extend(
                json.dumps(c, ensure_ascii=False) if isinstance(c, dict | list) else str(c)
                for c in row
            )
    return "\n".join(cells)


def _clear_texts() -> list[str]:
    return [ALICE, OLD_STREET, *(str(value) for value in SECRETS.values())]


def test_erase_identity__whole_database__holds_no_identifier_or_trait_value_in_clear(app):
    # Given alice's identity, history and earlier identity all naming her in clear
    project, env, alice, bob, elsewhere, editor = _world()
    before = _dump_text(skip_identity=elsewhere.id)
    assert [text for text in _clear_texts() if text not in before] == []  # the search can fail
    # When she is erased
    erase.erase_identity(editor, project.id, env.id, alice.id)
    # Then no table holds her identifier or any of her trait values (the same identifier in
    # Staging is another identity, not erased: its own row is left out of the search)
    after = _dump_text(skip_identity=elsewhere.id)
    assert [text for text in _clear_texts() if text in after] == []
    assert ALICE in _dump_text()
    # ... while bob's data is untouched and still in clear
    assert BOB in after and "Bobweg 1" in after


def test_erase_identity__rows__identity_traits_overrides_and_links_deleted(app):
    project, env, alice, bob, elsewhere, editor = _world()
    alice_id = alice.id
    erase.erase_identity(editor, project.id, env.id, alice_id)
    for model in (Trait, IdentityOverride, IdentityLink):
        assert db.session.scalar(select(func.count()).where(model.identity_id == alice_id)) == 0
    assert db.session.get(Identity, alice_id) is None
    assert db.session.get(Identity, bob.id) is not None
    assert db.session.get(Identity, elsewhere.id) is not None


def test_erase_identity__history__every_event_carries_the_same_token(app):
    # Given alice's history
    project, env, alice, _, _, editor = _world()
    alice_id = alice.id
    events_before = db.session.scalar(
        select(func.count()).where(AuditEvent.identity_id == alice_id)
    )
    # When she is erased
    token = erase.erase_identity(editor, project.id, env.id, alice_id)
    # Then the token is the keyed hash of environment and identifier
    secret = str(current_app.config["SECRET_KEY"]).encode()
    assert token == redaction.identity_token(secret, env.id, ALICE)
    assert token.startswith("erased:") and len(token) == len("erased:") + 16
    # ... and each of her events (plus the erasure) names her by it, and only by it
    events = db.session.scalars(select(AuditEvent).where(AuditEvent.identity_id == alice_id)).all()
    assert len(events) == events_before + 1
    assert all(token in e.object_label for e in events)
    erasure = events[-1]
    assert (erasure.action, erasure.object_label, erasure.actor_id) == ("erase", token, editor.id)
    assert erasure.before == {"identifier": token, "traits": 6, "overrides": 1, "links": 1}
    # ... the trait events keep their shape: a changed value still reads as a change
    street = [e for e in events if e.object_type == "trait" and e.object_id == "street"]
    assert street[0].object_label == f"street on {token}"
    assert street[0].before["value"] != street[0].after["value"]
    assert street[0].before["value"].startswith("erased:")
    assert street[0].before["type"] == "string"


def test_erase_identity__bulk_search_label__quoted_email_replaced(app):
    project, env, alice, _, _, editor = _world()
    token = erase.erase_identity(editor, project.id, env.id, alice.id)
    bulk = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "bulk_remove_overrides"))
    assert bulk.object_label == f'search “email = "{token}"”'
    assert bulk.before["query"] == f'email = "{token}"'


def test_erase_identity__short_shared_value__not_replaced_in_other_events(app):
    # "pro" is a cohort, not a person: other events that quote it keep it
    project, env, alice, _, _, editor = _world()
    request = manage.BulkRequest(action="remove_overrides", query="plan = pro")
    manage.apply_bulk(editor, project.id, env.id, request, 1)  # alice has an override
    erase.erase_identity(editor, project.id, env.id, alice.id)
    labels = db.session.scalars(
        select(AuditEvent.object_label).where(AuditEvent.action == "bulk_remove_overrides")
    ).all()
    assert "search “plan = pro”" in labels


def test_erase_identity__long_identifier__truncated_labels_redacted(app):
    # Given an identifier of 2,000 characters: trait labels are cut at 300 characters
    project = make_project("Demo")
    env = make_environment(project, "Production")
    editor = make_user("editor@example.com", "editor", project)
    identifier = "L" + "ong-identifier-" * 133
    identity = make_identity(env, identifier)
    db.session.commit()
    traits.set_trait(editor, identity, "plan", "pro", "string", utcnow())
    # When it is erased
    token = erase.erase_identity(editor, project.id, env.id, identity.id)
    # Then not even its first 20 characters remain in any label
    text = _dump_text()
    assert identifier[:20] not in text
    assert f"plan on {token}" in text


def test_erase_identity__unknown_or_other_environment__not_found_and_nothing_changed(app):
    project, env, alice, _, elsewhere, editor = _world()
    before = dump()
    with pytest.raises(NotFound, match="does not exist in this environment"):
        erase.erase_identity(editor, project.id, env.id, elsewhere.id)
    with pytest.raises(NotFound):
        erase.erase_identity(editor, project.id, env.id, 2**31 - 1)
    assert dump() == before


def test_erase_identity__overrides__bump_the_environment_revision(app):
    project, env, alice, _, _, editor = _world()
    revision = env.revision
    erase.erase_identity(editor, project.id, env.id, alice.id)
    db.session.expire_all()
    assert db.session.get(Environment, env.id).revision == revision + 1


# ----------------------------------------------------------------------------- bulk


def test_bulk_erase__search__erases_matches_one_event_without_the_search(app):
    # Given a search matching alice and bob
    project, env, alice, bob, elsewhere, editor = _world()
    request = manage.BulkRequest(action="erase", query="plan = pro")
    assert manage.preview_bulk(project.id, env.id, request) == 2
    # When the editor confirms the count
    assert manage.apply_bulk(editor, project.id, env.id, request, 2) == 2
    # Then both are gone, Staging's alice is not, and one event lists their tokens
    assert db.session.scalar(select(func.count()).where(Identity.environment_id == env.id)) == 0
    assert db.session.get(Identity, elsewhere.id) is not None
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "bulk_erase"))
    assert event.count == 2 and event.after is None
    assert event.object_label == "2 identities from a search"
    assert len(event.before["erased"]) == 2
    assert all(t.startswith("erased:") for t in event.before["erased"])
    text = _dump_text()
    assert BOB not in text and "Bobweg 1" not in text and SECRETS["street"] not in text


def test_bulk_erase__count_changed_meanwhile__refused_and_nothing_changed(app):
    project, env, *_, editor = _world()
    before = dump()
    request = manage.BulkRequest(action="erase", query="plan = pro")
    with pytest.raises(Exception, match="now matches 2 identities, not 3"):
        manage.apply_bulk(editor, project.id, env.id, request, 3)
    assert dump() == before


# ----------------------------------------------------------------------------- retention


def _age(identity: Identity, days: int) -> None:
    identity.last_seen_at = utcnow() - timedelta(days=days)


def test_prune__dry_run__counts_and_changes_nothing(app):
    project, env, alice, bob, elsewhere, _ = _world()
    _age(alice, 100)
    _age(elsewhere, 91)
    _age(bob, 89)
    db.session.commit()
    before = dump()
    result = erase.prune_identities(90, utcnow(), dry_run=True)
    assert result.dry_run is True
    assert result.per_environment == {env.id: 1, elsewhere.environment_id: 1}
    assert result.total == 2
    assert dump() == before


def test_prune__real__erases_only_the_stale_in_batches_with_one_event_per_environment(app):
    # Given five stale identities and a fresh one in one environment
    project = make_project("Demo")
    env = make_environment(project, "Production")
    stale = [
        make_identity(env, f"stale-{i}@example.test", {"nick": f"nick-{i}-x"}) for i in range(5)
    ]
    fresh = make_identity(env, "fresh@example.test")
    for identity in stale:
        _age(identity, 40)
    db.session.commit()
    # When pruning 30 days in batches of two
    result = erase.prune_identities(30, utcnow(), dry_run=False, batch_size=2)
    # Then the five are erased, the fresh one stays, and one system event counts five
    assert result.total == 5
    remaining = db.session.scalars(select(Identity.identifier)).all()
    assert remaining == [fresh.identifier]
    [event] = db.session.scalars(select(AuditEvent)).all()
    assert (event.action, event.actor_id, event.actor_label, event.count) == (
        "prune",
        None,
        "system",
        5,
    )
    assert event.object_label == "identities not seen for 30 days"
    assert len(event.before["erased"]) == 5
    text = _dump_text()
    assert "stale-" not in text and "nick-" not in text


def test_prune__environment_only__leaves_other_environments(app):
    project, env, alice, bob, elsewhere, _ = _world()
    for identity in (alice, elsewhere):
        _age(identity, 100)
    db.session.commit()
    result = erase.prune_identities(90, utcnow(), dry_run=False, environment_id=env.id)
    assert result.per_environment == {env.id: 1}
    assert db.session.get(Identity, elsewhere.id) is not None


@pytest.mark.parametrize("days", [0, -1, 36_501])
def test_prune__days_out_of_range__refused(app, days):
    with pytest.raises(Exception, match="from 1 to 36,500"):
        erase.prune_identities(days, utcnow())


# ----------------------------------------------------------------------------- the schema


IDENTITY_COLUMNS = ("identity_id", "identifier")


def test_erased_tables__every_table_holding_identity_ids_or_identifiers__is_handled(app):
    # A table added later (analytics, experiments) that stores identity ids or identifiers
    # fails here until the erase service deletes from it or redacts it.
    handled = {name for name, _ in erase.ERASED_TABLES} | set(erase.REDACTED_TABLES)
    holding = set()
    for table in db.metadata.tables.values():
        names = set(table.columns.keys())
        refers = any(fk.column.table.name == "identities" for fk in table.foreign_keys)
        if refers or names & set(IDENTITY_COLUMNS) or table.name == "identities":
            holding.add(table.name)
    assert holding - handled == set(), "erase.ERASED_TABLES must handle these tables"
    assert {"traits", "identity_overrides", "identity_links", "identities"} <= holding
    # Usage rollups keep no identity: erasure leaves them (their counts are not anyone's).
    assert {"flag_usage", "flag_usage_daily", "flag_values_daily"}.isdisjoint(holding)


def test_erased_tables__columns_exist_and_identities_come_last(app):
    for name, column in erase.ERASED_TABLES:
        assert column in db.metadata.tables[name].columns, (name, column)
    assert erase.ERASED_TABLES[-1] == ("identities", "id")


# ----------------------------------------------------------------------------- a true race


def _until_a_connection_waits_on_a_lock(seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    with db.engine.connect() as watcher:
        while time.monotonic() < deadline:
            waiting = watcher.scalar(text(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                " AND application_name = current_setting('application_name')"))  # fmt: skip
            if waiting:
                return
            time.sleep(0.005)


CHANGES = {
    "new trait": lambda actor, identity, feature: traits.set_trait(
        actor, identity, "fresh", "v", "string", utcnow()
    ),
    "override": lambda actor, identity, feature: identity_overrides.toggle_override(
        actor, identity, feature, utcnow(), None
    ),
    "link": lambda actor, identity, feature: editing_rights.link_identity(
        actor, identity, proof=None, email="qa@example.com"
    ),
}


@pytest.mark.databases("postgres")
@pytest.mark.parametrize("change", sorted(CHANGES))
def test_erase__edit_arrives_while_erasing__refused_with_not_found(app, monkeypatch, change):
    # Given alice being erased: the erasure holds her row while it rewrites the log
    project, env, alice, _, _, editor = _world()
    feature = db.session.scalar(select(Feature).where(Feature.name == "welcome"))
    ids = (project.id, env.id, alice.id, editor.id, feature.id)
    db.session.commit()
    holding = threading.Event()
    real = redaction.redact_bulk_events

    def slow(*args: Any) -> int:
        changed = real(*args)
        holding.set()
        _until_a_connection_waits_on_a_lock()
        return changed

    monkeypatch.setattr(redaction, "redact_bulk_events", slow)
    outcome: list[str] = []

    def erasing() -> None:
        with app.app_context():
            erase.erase_identity(None, ids[0], ids[1], ids[2])

    def editing() -> None:
        with app.app_context():
            actor = db.session.get(User, ids[3])
            identity = db.session.get(Identity, ids[2])
            target = db.session.get(Feature, ids[4])
            holding.wait(20)
            # When an editor's change of her arrives meanwhile
            try:
                CHANGES[change](actor, identity, target)
                outcome.append("saved")
            except NotFound as exc:
                outcome.append(str(exc))
            except Exception as exc:  # pragma: no cover - reported by the assertion
                outcome.append(repr(exc))

    threads = [threading.Thread(target=erasing), threading.Thread(target=editing)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    # Then it waits for the erasure and is refused with the page's message, not a 500
    assert outcome == ["No such identity: it does not exist in this environment."]
    assert db.session.get(Identity, ids[2]) is None


def test_prune__batches__bulk_searches_quoting_them_redacted_in_every_batch(app):
    # Given three stale identities, each quoted by a bulk action's search
    project = make_project("Demo")
    env = make_environment(project, "Production")
    editor = make_user("editor@example.com", "editor", project)
    names = [f"quoted-{i}@example.test" for i in range(3)]
    for name in names:
        _age(make_identity(env, name), 40)
    db.session.commit()
    for name in names:
        request = manage.BulkRequest(action="remove_overrides", query=f'"{name}"')
        manage.apply_bulk(editor, project.id, env.id, request, 0)
    # When they are pruned one per batch
    erase.prune_identities(30, utcnow(), dry_run=False, batch_size=1)
    # Then no search names any of them any more
    labels = db.session.scalars(
        select(AuditEvent.object_label).where(AuditEvent.action == "bulk_remove_overrides")
    ).all()
    assert len(labels) == 3
    assert all(re.fullmatch(r"search “\"erased:[0-9a-f]{16}\"”", label) for label in labels), labels
