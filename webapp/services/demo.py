"""Demo data: one organisation, a "Demo" project, two environments, realistic identities."""

from __future__ import annotations

import random
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, insert, select
from werkzeug.security import generate_password_hash

from ..clock import utcnow
from ..extensions import db
from ..models import (
    Environment,
    Feature,
    FeatureState,
    Identity,
    IdentityLink,
    IdentityOverride,
    MultivariateAllocation,
    MultivariateOption,
    Organisation,
    Project,
    ProjectRole,
    Segment,
    SegmentOverride,
    ServerKey,
    Trait,
    TypedValue,
    User,
    trait_row,
)
from ..models.base import sha256_hex

IDENTITIES_PER_ENVIRONMENT = 2000
ENVIRONMENTS = ("Development", "Production")
# Marked production: QA users may link only their own identities there
# (services/identities/editing_rights.py).
PRODUCTION_ENVIRONMENTS = ("Production",)
DEMO_ROLES = ("admin", "editor", "qa", "viewer")
DEMO_EMAIL_DOMAIN = "demo.flagpost.example.com"
BATCH = 500

# (name, enabled, value, description)
STANDARD_FEATURES: list[tuple[str, bool, TypedValue, str]] = [
    ("new_dashboard", False, None, "The redesigned dashboard"),
    ("dark_mode", True, None, "Dark colour scheme toggle"),
    ("search_v2", False, None, "New search backend"),
    ("maintenance_banner", False, "Scheduled maintenance on Sunday 02:00 UTC", "Banner text"),
    ("max_upload_mb", True, 25, "Largest upload allowed, in MB"),
    ("api_rate_limit", True, 1000, "Requests per hour per user"),
    ("welcome_message", True, "Welcome to Acme!", "Greeting on the home page"),
    ("show_pricing_v3", False, None, "Third pricing page iteration"),
    ("export_csv", True, None, "CSV export of reports"),
    ("export_pdf", False, None, "PDF export of reports"),
    ("ai_assistant", False, None, "In-app AI assistant"),
    ("referral_program", True, None, "Refer-a-friend rewards"),
    ("referral_bonus_eur", True, 10, "Bonus per successful referral"),
    ("support_chat", True, None, "Live chat with support"),
    ("support_email", True, "help@acme.example.com", "Support address shown in the app"),
    ("two_factor_required", False, None, "Force 2FA at login"),
    ("session_timeout_minutes", True, 60, "Idle minutes before logout"),
    ("mobile_push", True, None, "Push notifications"),
    ("legacy_editor", True, None, "Keep the old editor available"),
    ("beta_features_menu", False, None, "Menu listing beta features"),
    ("analytics_sampling", True, 100, "Percent of events kept"),
    ("gdpr_banner", True, None, "Cookie consent banner"),
    ("new_onboarding_email", False, "Hi {name}, let's get you set up", "Onboarding email body"),
    ("allow_team_invites", True, True, "Teams may invite members"),
    ("billing_portal", False, None, "Self-service billing portal"),
]

# (name, enabled, control value, [(option value, allocation %)], description)
MULTIVARIATE_FEATURES: list[tuple[str, bool, TypedValue, list[tuple[TypedValue, float]], str]] = [
    ("checkout_button_color", True, "green", [("blue", 30.0), ("orange", 30.0)], "A/B/C test"),
    (
        "pricing_page_variant",
        True,
        "control",
        [("annual_first", 25.0), ("monthly_first", 25.0)],
        "Which plan the pricing page leads with",
    ),
    ("onboarding_flow", True, "classic", [("guided", 50.0)], "Onboarding experiment"),
    ("search_ranking", True, "bm25", [("semantic", 20.0), ("hybrid", 20.0)], "Ranking model"),
    ("homepage_hero", True, "v1", [("v2", 33.0), ("v3", 33.0)], "Hero banner experiment"),
]


def _condition(prop: str, operator: str, value: str | None) -> dict[str, Any]:
    return {"property_": prop, "operator": operator, "value": value}


def _rule(kind: str, *conditions: dict[str, Any], rules: list[Any] | None = None) -> dict[str, Any]:
    return {"type": kind, "conditions": list(conditions), "rules": rules or []}


def _segment_rules() -> list[tuple[str, str, list[dict[str, Any]]]]:
    return [
        (
            "Pro users",
            "Customers on the pro plan",
            [_rule("ALL", rules=[_rule("ANY", _condition("plan", "EQUAL", "pro"))])],
        ),
        (
            "EU customers",
            "Customers in the EU markets we serve",
            [_rule("ALL", rules=[_rule("ANY", _condition("country", "IN", "DE,FR,ES,IT,NL"))])],
        ),
        (
            "Beta testers",
            "Users who opted in to beta features",
            [_rule("ALL", rules=[_rule("ALL", _condition("beta_opt_in", "EQUAL", "true"))])],
        ),
        (
            "New signups",
            "Signed up within the last two weeks",
            [_rule("ALL", rules=[_rule("ALL", _condition("signup_days", "LESS_THAN", "14"))])],
        ),
        (
            "Modern app",
            "App version 2.4.0 or later",
            [
                _rule(
                    "ALL",
                    rules=[
                        _rule(
                            "ALL",
                            _condition("app_version", "GREATER_THAN_INCLUSIVE", "2.4.0:semver"),
                        )
                    ],
                )
            ],
        ),
        (
            "Acme staff",
            "Employees, by email domain",
            [_rule("ALL", rules=[_rule("ALL", _condition("email", "REGEX", r".*@acme\.com$"))])],
        ),
        (
            "10% rollout",
            "A stable tenth of all identities",
            [_rule("ALL", rules=[_rule("ALL", _condition("", "PERCENTAGE_SPLIT", "10"))])],
        ),
        (
            "Adults outside the US",
            "18 or older and not in the US",
            [
                _rule(
                    "ALL",
                    rules=[
                        _rule("ALL", _condition("age", "GREATER_THAN_INCLUSIVE", "18")),
                        _rule("NONE", _condition("country", "EQUAL", "US")),
                    ],
                )
            ],
        ),
        (
            "Enterprise or power users",
            "Enterprise plan, or anyone with an odd signup day count",
            [
                _rule(
                    "ALL",
                    rules=[
                        _rule(
                            "ANY",
                            _condition("plan", "EQUAL", "enterprise"),
                            _condition("signup_days", "MODULO", "2|1"),
                        )
                    ],
                )
            ],
        ),
    ]


# (segment name, feature name, enabled, value, priority)
SEGMENT_OVERRIDES: list[tuple[str, str, bool, TypedValue, int]] = [
    ("Pro users", "max_upload_mb", True, 250, 1),
    ("Pro users", "billing_portal", True, None, 1),
    ("Beta testers", "new_dashboard", True, None, 2),
    ("Beta testers", "beta_features_menu", True, None, 2),
    ("Acme staff", "ai_assistant", True, None, 0),
    ("EU customers", "gdpr_banner", True, "strict", 3),
    ("Modern app", "search_v2", True, None, 4),
    ("10% rollout", "show_pricing_v3", True, None, 5),
    ("New signups", "welcome_message", True, "Welcome aboard! Here's a tour.", 6),
    ("Enterprise or power users", "api_rate_limit", True, 10000, 7),
]

COUNTRIES = ["DE", "FR", "US", "GB", "ES", "IT", "NL", "SE", "PL", "BR", "IN", "JP", "CA", "AU"]
PLANS = ["free"] * 6 + ["pro"] * 3 + ["enterprise"]
FIRST = [
    "anna",
    "ben",
    "chloe",
    "david",
    "emma",
    "felix",
    "grace",
    "hugo",
    "ines",
    "jonas",
    "kai",
    "lena",
    "marco",
    "nora",
    "oscar",
    "paula",
    "quinn",
    "rosa",
    "sam",
    "tara",
]
DOMAINS = ["gmail.com", "outlook.com", "acme.com", "example.org", "mail.de", "proton.me"]


@dataclass(frozen=True)
class DemoLogin:
    email: str
    role: str
    password: str


@dataclass(frozen=True)
class SeedResult:
    created: bool
    logins: list[DemoLogin]
    message: str


def database_is_empty() -> bool:
    """Tell whether there is no organisation and no user yet."""
    orgs = db.session.scalar(select(func.count(Organisation.id))) or 0
    people = db.session.scalar(select(func.count(User.id))) or 0
    return orgs == 0 and people == 0


def total_steps() -> int:
    """Return the number of progress steps ``seed_demo`` reports."""
    return 2 + len(ENVIRONMENTS) * IDENTITIES_PER_ENVIRONMENT


def seed_demo(progress: Callable[[int], None] | None = None, seed: int = 7) -> SeedResult:
    """Fill an empty database with the demo organisation; do nothing otherwise.

    :param progress: called with the number of steps just completed (for a progress bar).
    :param seed: the random seed for identities and traits (passwords are always random).
    :return: whether data was created, and the demo logins when it was.
    """
    step = progress or (lambda _n: None)
    if not database_is_empty():
        return SeedResult(False, [], "The database already has data; the demo was not seeded.")
    rng = random.Random(seed)
    project = _create_project()
    features = _create_features(project)
    segments = _create_segments(project)
    db.session.flush()
    step(1)
    environments = [_create_environment(project, name, features, segments) for name in ENVIRONMENTS]
    db.session.flush()
    for environment in environments:
        for done in _create_identities(environment, rng):
            step(done)
    _create_identity_overrides(environments, features)
    logins = _create_users(project, environments)
    db.session.commit()
    step(1)
    return SeedResult(True, logins, "Demo data created.")


def _create_project() -> Project:
    organisation = Organisation(name="Acme")
    project = Project(name="Demo", organisation=organisation)
    db.session.add(organisation)
    return project


def _create_features(project: Project) -> list[Feature]:
    features = [
        Feature(project=project, name=name, type="STANDARD", description=description)
        for name, _enabled, _value, description in STANDARD_FEATURES
    ]
    for name, _enabled, _value, options, description in MULTIVARIATE_FEATURES:
        feature = Feature(project=project, name=name, type="MULTIVARIATE", description=description)
        for option_value, allocation in options:
            option = MultivariateOption(default_allocation=allocation)
            option.value = option_value
            feature.options.append(option)
        features.append(feature)
    db.session.add_all(features)
    return features


def _defaults() -> dict[str, tuple[bool, TypedValue]]:
    found = {name: (enabled, value) for name, enabled, value, _ in STANDARD_FEATURES}
    found.update({name: (enabled, value) for name, enabled, value, _o, _d in MULTIVARIATE_FEATURES})
    return found


def _create_segments(project: Project) -> dict[str, Segment]:
    segments = {}
    for position, (name, description, rules) in enumerate(_segment_rules()):
        segments[name] = Segment(
            project=project, name=name, description=description, rules=rules, position=position
        )
    db.session.add_all(segments.values())
    return segments


def _create_environment(
    project: Project, name: str, features: list[Feature], segments: dict[str, Segment]
) -> Environment:
    environment = Environment(
        project=project, name=name, production=name in PRODUCTION_ENVIRONMENTS
    )
    db.session.add(environment)
    environment.server_keys.append(ServerKey(name="Backend"))
    defaults = _defaults()
    by_name = {feature.name: feature for feature in features}
    for feature in features:
        enabled, value = defaults[feature.name]
        # Development has everything switched on so engineers can see new work.
        state = FeatureState(
            feature=feature, environment=environment, enabled=enabled or name == "Development"
        )
        state.value = value
        db.session.add(state)
        for option in feature.options:
            state.allocations.append(
                MultivariateAllocation(option=option, percentage=option.default_allocation)
            )
    for segment_name, feature_name, enabled, value, priority in SEGMENT_OVERRIDES:
        override = SegmentOverride(
            segment=segments[segment_name],
            feature=by_name[feature_name],
            environment=environment,
            enabled=enabled,
            priority=priority,
        )
        override.value = value if value is not None else defaults[feature_name][1]
        db.session.add(override)
    return environment


def _identity_traits(rng: random.Random, index: int) -> dict[str, TypedValue]:
    first = rng.choice(FIRST)
    major, minor, patch = rng.choice([1, 2, 2, 3]), rng.randint(0, 9), rng.randint(0, 12)
    version = f"{major}.{minor}.{patch}" + (rng.choice(["", "", "", "-beta.1", "-rc.2"]))
    return {
        "plan": rng.choice(PLANS),
        "country": rng.choice(COUNTRIES),
        "age": rng.randint(16, 80),
        "app_version": version,
        "beta_opt_in": rng.random() < 0.15,
        "signup_days": rng.randint(0, 1500),
        "email": f"{first}.{index}@{rng.choice(DOMAINS)}",
    }


def _identity_rows(environment: Environment, rng: random.Random) -> Iterator[list[dict[str, Any]]]:
    now = utcnow()
    batch: list[dict[str, Any]] = []
    for index in range(IDENTITIES_PER_ENVIRONMENT):
        identifier = f"user-{index:05d}"
        batch.append(
            {
                "environment_id": environment.id,
                "identifier": identifier,
                "identifier_hash": sha256_hex(identifier),
                "identifier_prefix": identifier,
                "created_at": now,
                "last_seen_at": now,
                "traits": _identity_traits(rng, index),
            }
        )
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _create_identities(environment: Environment, rng: random.Random) -> Iterator[int]:
    """Insert identities and traits in batches, yielding progress after each batch."""
    for batch in _identity_rows(environment, rng):
        traits = [row.pop("traits") for row in batch]
        ids = db.session.scalars(
            insert(Identity).returning(Identity.id, sort_by_parameter_order=True), batch
        ).all()
        rows = [
            trait_row(environment.id, identity_id, key, value, batch[0]["created_at"])
            for identity_id, values in zip(ids, traits, strict=True)
            for key, value in values.items()
        ]
        # render_nulls: every row has the same columns (a string trait's value_num is None),
        # so the rows go in as one executemany instead of thousands of differently shaped
        # INSERTs (the ORM otherwise leaves None columns out and groups rows by shape).
        db.session.execute(insert(Trait).execution_options(render_nulls=True), rows)
        yield len(batch)


def _create_identity_overrides(environments: list[Environment], features: list[Feature]) -> None:
    by_name = {feature.name: feature for feature in features}
    picks = [
        ("new_dashboard", True, None),
        ("max_upload_mb", True, 1024),
        ("welcome_message", True, "Hello, VIP!"),
        ("dark_mode", False, None),
        ("ai_assistant", True, None),
    ]
    for environment in environments:
        identities = db.session.scalars(
            select(Identity)
            .where(Identity.environment_id == environment.id)
            .order_by(Identity.id)
            .limit(len(picks))
        ).all()
        for identity, (name, enabled, value) in zip(identities, picks, strict=False):
            override = IdentityOverride(
                identity=identity,
                feature=by_name[name],
                environment_id=environment.id,
                enabled=enabled,
            )
            override.value = value
            db.session.add(override)


def _create_users(project: Project, environments: list[Environment]) -> list[DemoLogin]:
    logins = []
    admin: User | None = None
    for role in DEMO_ROLES:
        password = secrets.token_urlsafe(12)
        user = User(
            email=f"{role}@{DEMO_EMAIL_DOMAIN}", password_hash=generate_password_hash(password)
        )
        # The demo admin is an organisation admin (every project), so People is reachable.
        scope = None if role == "admin" else project
        user.roles.append(ProjectRole(project=scope, role=role))
        db.session.add(user)
        logins.append(DemoLogin(user.email, role, password))
        db.session.flush()
        if role == "admin":
            admin = user
        if role == "qa":
            _link_qa_identities(user, environments, admin)
    return logins


QA_TRAITS: dict[str, TypedValue] = {
    "plan": "free",
    "country": "DE",
    "age": 30,
    "beta_opt_in": False,
    "email": "qa.tester@acme.com",
    "app_version": "2.3.0",
    "signup_days": 400,
}


def _link_qa_identities(user: User, environments: list[Environment], admin: User | None) -> None:
    """Give the QA account "its own" identity in each environment to test with.

    The admin makes the links: "qa-tester" is not the QA account's email, so in Production
    only a link an admin or editor made lets the QA account change it.
    """
    for environment in environments:
        identity = Identity(environment_id=environment.id, identifier="qa-tester")
        db.session.add(identity)
        db.session.flush()
        for key, value in QA_TRAITS.items():
            trait = Trait(identity_id=identity.id, environment_id=environment.id, key=key)
            trait.value = value
            db.session.add(trait)
        created_by_id = admin.id if admin is not None else None
        db.session.add(
            IdentityLink(user_id=user.id, identity_id=identity.id, created_by_id=created_by_id)
        )
