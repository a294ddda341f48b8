"""The flask commands: create-user, seed-demo, demo-logins."""

import pytest
from sqlalchemy import func, select, text
from werkzeug.security import generate_password_hash

from tests.factories import FAST_HASH, make_project
from webapp.extensions import db
from webapp.models import (
    Environment,
    Feature,
    Identity,
    IdentityLink,
    IdentityOverride,
    ProjectRole,
    Segment,
    SegmentOverride,
    Trait,
    User,
)
from webapp.services import accounts, demo
from webapp.services.identities import editing_rights

# Commands and their wording: runs once, on SQLite (see tests/conftest.py).
pytestmark = pytest.mark.databases("sqlite")


@pytest.fixture
def quick_demo_hashes(monkeypatch):
    """The demo users get the factories' quick password hash instead of scrypt (about 0.3 s
    each): for the seed-demo tests that are not about logging in. The first seed test keeps
    scrypt and logs every printed login in."""
    monkeypatch.setattr(
        demo,
        "generate_password_hash",
        lambda password: generate_password_hash(password, method=FAST_HASH),
    )


@pytest.fixture
def instance_dir(app, tmp_path, monkeypatch):
    # The demo-logins file goes to the instance folder; keep tests away from the real one.
    monkeypatch.setattr(app, "instance_path", str(tmp_path))
    return tmp_path


def test_create_user__password_from_environment(runner, monkeypatch):
    monkeypatch.setenv("FLAGPOST_PASSWORD", "s3cret-pass")
    result = runner.invoke(args=["create-user", "Root@Example.com", "--role", "admin"])
    assert result.exit_code == 0, result.output
    user = db.session.scalar(select(User))
    assert user.email == "root@example.com"
    assert [(r.project_id, r.role) for r in user.roles] == [(None, "admin")]
    assert accounts.authenticate("root@example.com", "s3cret-pass") is not None


def test_create_user__prompts_for_the_password(runner, monkeypatch):
    monkeypatch.delenv("FLAGPOST_PASSWORD", raising=False)
    result = runner.invoke(
        args=["create-user", "qa@example.com", "--role", "qa"],
        input="long-password\nlong-password\n",
    )
    assert result.exit_code == 0, result.output
    assert accounts.authenticate("qa@example.com", "long-password") is not None


def test_create_user__project_option__grants_on_that_project(runner, monkeypatch):
    project = make_project("Demo")
    db.session.commit()
    monkeypatch.setenv("FLAGPOST_PASSWORD", "s3cret-pass")
    result = runner.invoke(
        args=["create-user", "e@example.com", "--role", "editor", "--project", "Demo"]
    )
    assert result.exit_code == 0, result.output
    role = db.session.scalar(select(ProjectRole))
    assert (role.project_id, role.role) == (project.id, "editor")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["create-user", "not-an-email"], "Invalid email address"),
        (["create-user", "a@b@c.com"], "Invalid email address"),
        (["create-user", "x@example.com", "--project", "Nope"], "No project named 'Nope'"),
        (["create-user", "x@example.com", "--role", "god"], "Invalid value for '--role'"),
    ],
)
def test_create_user__bad_input__exits_non_zero_with_a_message(runner, monkeypatch, args, message):
    monkeypatch.setenv("FLAGPOST_PASSWORD", "s3cret-pass")
    result = runner.invoke(args=args)
    assert result.exit_code != 0
    assert message in result.output
    assert db.session.scalar(select(func.count(User.id))) == 0


def test_create_user__duplicate__exits_non_zero(runner, monkeypatch):
    monkeypatch.setenv("FLAGPOST_PASSWORD", "s3cret-pass")
    assert runner.invoke(args=["create-user", "dup@example.com"]).exit_code == 0
    result = runner.invoke(args=["create-user", "DUP@example.com"])
    assert result.exit_code != 0
    assert "already exists" in result.output
    assert db.session.scalar(select(func.count(User.id))) == 1


def test_create_user__short_password__exits_non_zero(runner, monkeypatch):
    monkeypatch.setenv("FLAGPOST_PASSWORD", "short")
    result = runner.invoke(args=["create-user", "x@example.com"])
    assert result.exit_code != 0
    assert "at least 10 characters" in result.output


COUNTED = [
    Environment,
    Feature,
    Segment,
    SegmentOverride,
    Identity,
    Trait,
    IdentityOverride,
    User,
    IdentityLink,
]


def _snapshot():
    counts = {
        model.__tablename__: db.session.scalar(select(func.count()).select_from(model))
        for model in COUNTED
    }
    traits = db.session.execute(
        text("SELECT identity_id, key, value_type, value_text FROM traits ORDER BY id")
    ).all()
    return counts, traits


def test_seed_demo__fills_an_empty_database(runner, instance_dir):
    result = runner.invoke(args=["seed-demo"])
    assert result.exit_code == 0, result.output
    counts, _ = _snapshot()
    assert counts["environments"] == 2
    assert 25 <= counts["features"] <= 35
    assert 8 <= counts["segments"] <= 10
    per_env = demo.IDENTITIES_PER_ENVIRONMENT + 1  # + the QA account's own identity
    assert counts["identities"] == 2 * per_env
    assert counts["users"] == 4
    assert counts["identity_overrides"] >= 4
    multivariate = db.session.scalar(
        select(func.count(Feature.id)).where(Feature.type == "MULTIVARIATE")
    )
    assert multivariate >= 3
    operators = {
        c["operator"]
        for s in db.session.scalars(select(Segment))
        for r in s.rules
        for sub in r["rules"]
        for c in sub["conditions"]
    }
    assert {"EQUAL", "IN", "REGEX", "PERCENTAGE_SPLIT", "MODULO", "LESS_THAN"} <= operators
    # The printed logins really work.
    logins = (instance_dir / "demo_logins.txt").read_text()
    for role in demo.DEMO_ROLES:
        line = next(line for line in logins.splitlines() if line.strip().startswith(role))
        _role, email, password = line.split()
        assert accounts.authenticate(email, password) is not None
        assert password in result.output


def test_seed_demo__traits_are_realistic_and_typed(runner, instance_dir, quick_demo_hashes):
    runner.invoke(args=["seed-demo"])
    types = dict(
        db.session.execute(text("SELECT key, MIN(value_type) FROM traits GROUP BY key")).all()
    )
    assert types == {
        "plan": "string",
        "country": "string",
        "age": "integer",
        "app_version": "string",
        "beta_opt_in": "boolean",
        "signup_days": "integer",
        "email": "string",
    }


def test_seed_demo__production_is_marked_and_the_qa_account_keeps_its_own_identity(
    runner, instance_dir, quick_demo_hashes
):
    # Given the demo
    assert runner.invoke(args=["seed-demo", "--no-print-logins"]).exit_code == 0
    envs = {env.name: env for env in db.session.scalars(select(Environment))}
    tester = db.session.scalar(select(User).where(User.email.startswith("qa@")))
    # Then only Production is a production environment
    assert {name: env.production for name, env in envs.items()} == {
        "Development": False,
        "Production": True,
    }
    for env in envs.values():
        own = db.session.scalar(
            select(Identity).where(
                Identity.environment_id == env.id, Identity.identifier == "qa-tester"
            )
        )
        customer = db.session.scalar(
            select(Identity).where(
                Identity.environment_id == env.id, Identity.identifier != "qa-tester"
            )
        )
        # And the QA account may change its own identity everywhere (the admin linked it),
        # but link a customer only outside production
        assert editing_rights.can_edit_identity(tester, own)
        assert editing_rights.may_link_self(tester, customer) is (not env.production)


def test_seed_demo__second_run__changes_nothing(runner, instance_dir, quick_demo_hashes):
    assert runner.invoke(args=["seed-demo"]).exit_code == 0
    before = _snapshot()
    logins = (instance_dir / "demo_logins.txt").read_text()
    result = runner.invoke(args=["seed-demo"])
    assert result.exit_code == 0
    assert "nothing was changed" in result.output
    assert _snapshot() == before
    assert (instance_dir / "demo_logins.txt").read_text() == logins


def test_seed_demo__database_with_a_user__is_left_alone(runner, instance_dir, monkeypatch):
    monkeypatch.setenv("FLAGPOST_PASSWORD", "s3cret-pass")
    runner.invoke(args=["create-user", "me@example.com", "--role", "admin"])
    result = runner.invoke(args=["seed-demo"])
    assert "nothing was changed" in result.output
    assert db.session.scalar(select(func.count(Environment.id))) == 0


def test_seed_demo__no_print_logins__saves_them_without_printing(
    runner, instance_dir, quick_demo_hashes
):
    result = runner.invoke(args=["seed-demo", "--no-print-logins"])
    assert result.exit_code == 0, result.output
    saved = (instance_dir / "demo_logins.txt").read_text()
    password = saved.splitlines()[1].split()[-1]
    assert password not in result.output
    assert password in runner.invoke(args=["demo-logins"]).output


def test_demo_logins__without_seed__says_so(runner, instance_dir):
    result = runner.invoke(args=["demo-logins"])
    assert result.exit_code == 0
    assert "No demo logins recorded" in result.output
