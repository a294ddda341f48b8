"""The flask commands erase-identity and prune-identities: what they do and what they say."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.factories import make_environment, make_identity, make_project
from tests.hardening.dbdump import dump
from webapp.clock import utcnow
from webapp.extensions import db
from webapp.models import AuditEvent, Identity, ServerKey

# Commands and their wording: runs once, on SQLite (the erasure's database behaviour is
# tested on both databases in tests/services/test_erase.py).
pytestmark = pytest.mark.databases("sqlite")

TOKEN = re.compile(r"erased:[0-9a-f]{16}")


@pytest.fixture
def env(app):
    project = make_project("Demo")
    environment = make_environment(project, "Production")
    make_identity(environment, "alice@example.test", {"email": "alice@example.test"})
    make_identity(environment, "bob@example.test")
    db.session.commit()
    return environment


def _identifiers() -> list[str]:
    db.session.expire_all()
    return sorted(db.session.scalars(select(Identity.identifier)))


def test_erase_identity__client_key__erases_and_prints_the_token(runner, env):
    result = runner.invoke(args=["erase-identity", env.client_key, "alice@example.test"])
    assert result.exit_code == 0, result.output
    [token] = TOKEN.findall(result.output)
    assert result.output == f"Erased the identity; the audit log now calls it {token}.\n"
    assert _identifiers() == ["bob@example.test"]
    [event] = db.session.scalars(select(AuditEvent)).all()
    assert (event.action, event.actor_label, event.object_label) == ("erase", "system", token)


def test_erase_identity__server_key__works_too(runner, env):
    key = ServerKey(environment=env, name="backend")
    db.session.add(key)
    db.session.commit()
    result = runner.invoke(args=["erase-identity", key.key, "bob@example.test"])
    assert result.exit_code == 0, result.output
    assert _identifiers() == ["alice@example.test"]


def test_erase_identity__old_key_starting_with_a_dash__passes_after_double_dash(runner, env):
    # Given a client key made before new keys avoided a leading "-"
    env.client_key = "-" + env.client_key[1:]
    db.session.commit()
    # When it is passed after "--", as the README says
    result = runner.invoke(args=["erase-identity", "--", env.client_key, "bob@example.test"])
    # Then it is the key, not an option
    assert result.exit_code == 0, result.output
    assert _identifiers() == ["alice@example.test"]


@pytest.mark.parametrize(
    ("key", "identifier", "message"),
    [
        ("nope", "alice@example.test", "No environment has this key."),
        (None, "carol@example.test", "No identity has this identifier in this environment."),
    ],
)
def test_erase_identity__unknown__error_and_nothing_changed(runner, env, key, identifier, message):
    before = dump()
    result = runner.invoke(args=["erase-identity", key or env.client_key, identifier])
    assert result.exit_code == 1
    assert f"Error: {message}" in result.output
    assert dump() == before


def _age(identifier: str, days: int) -> None:
    identity = db.session.scalar(select(Identity).where(Identity.identifier == identifier))
    identity.last_seen_at = utcnow() - timedelta(days=days)
    db.session.commit()


@pytest.mark.parametrize("flags", [[], ["--dry-run"]], ids=["default", "explicit"])
def test_prune__without_yes__dry_run_counts_and_changes_nothing(runner, env, flags):
    _age("alice@example.test", 100)
    before = dump()
    result = runner.invoke(args=["prune-identities", "--not-seen-days", "90", *flags])
    assert result.exit_code == 0, result.output
    assert re.fullmatch(
        r"Dry run: 1 identity not seen since \d{4}-\d\d-\d\d \d\d:\d\d UTC would be erased\.\n"
        r"Run again with --yes to erase them\.\n",
        result.output,
    ), result.output
    assert dump() == before


def test_prune__yes__erases_the_stale_and_says_how_many(runner, env):
    _age("alice@example.test", 100)
    _age("bob@example.test", 10)
    result = runner.invoke(args=["prune-identities", "--not-seen-days", "90", "--yes"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Erased 1 identity not seen since ")
    assert _identifiers() == ["bob@example.test"]
    [event] = db.session.scalars(select(AuditEvent)).all()
    assert (event.action, event.actor_label, event.count) == ("prune", "system", 1)


def test_prune__nothing_stale__says_zero_without_the_hint(runner, env):
    result = runner.invoke(args=["prune-identities", "--not-seen-days", "90"])
    assert result.exit_code == 0
    assert result.output.startswith("Dry run: 0 identities not seen since ")
    assert "--yes" not in result.output


def test_prune__environment_key__only_that_environment(runner, env):
    other = make_environment(env.project, "Staging")
    make_identity(other, "old@example.test")
    db.session.commit()
    _age("old@example.test", 100)
    _age("alice@example.test", 100)
    args = ["prune-identities", "--not-seen-days", "90", "--environment", other.client_key]
    result = runner.invoke(args=[*args, "--yes"])
    assert result.exit_code == 0, result.output
    assert _identifiers() == ["alice@example.test", "bob@example.test"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--not-seen-days", "90", "--dry-run", "--yes"], "Choose --dry-run or --yes, not both."),
        (["--not-seen-days", "0"], "Give a number of days from 1 to 36,500."),
        (["--not-seen-days", "90", "--environment", "nope"], "No environment has this key."),
        ([], "Missing option '--not-seen-days'"),
    ],
)
def test_prune__bad_arguments__error_and_nothing_changed(runner, env, args, message):
    _age("alice@example.test", 100)
    before = dump()
    result = runner.invoke(args=["prune-identities", *args])
    assert result.exit_code != 0
    assert message in result.output
    assert dump() == before
