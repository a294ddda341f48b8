"""An environment rich enough for SDK API tests: features, segments, overrides, keys."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.factories import (
    make_environment,
    make_feature,
    make_identity,
    make_project,
    make_segment,
)
from webapp.clock import utcnow
from webapp.extensions import db
from webapp.models import (
    Environment,
    IdentityOverride,
    MultivariateAllocation,
    MultivariateOption,
    SegmentOverride,
    ServerKey,
)


@dataclass
class SdkEnvironment:
    environment: Environment
    client_key: str
    server_key: str
    revoked_key: str

    def client(self) -> dict[str, str]:
        return {"X-Environment-Key": self.client_key}

    def server(self) -> dict[str, str]:
        return {"X-Environment-Key": self.server_key}


def _rule(prop: str, operator: str, value: str) -> list[dict]:
    return [
        {
            "type": "ALL",
            "conditions": [],
            "rules": [
                {
                    "type": "ANY",
                    "rules": [],
                    "conditions": [{"property_": prop, "operator": operator, "value": value}],
                }
            ],
        }
    ]


def build_sdk_environment() -> SdkEnvironment:
    """Create the shared test environment (flushes; the caller commits)."""
    project = make_project("Demo")
    environment = make_environment(project, "Production")
    make_feature(project, "dark_mode", enabled=True)
    make_feature(project, "max_upload_mb", enabled=True, value=25)
    make_feature(project, "welcome", enabled=False, value="hello")
    make_feature(project, "secret_backend", enabled=True, value="s3", server_key_only=True)
    colour = make_feature(
        project, "button_colour", enabled=True, value="green", type="MULTIVARIATE"
    )
    state = colour.states[0]
    for value, percentage in (("blue", 30.0), ("orange", 30.0)):
        option = MultivariateOption(feature=colour, default_allocation=percentage)
        option.value = value
        db.session.add(option)
        state.allocations.append(MultivariateAllocation(option=option, percentage=percentage))
    pro = make_segment(project, "Pro users", _rule("plan", "EQUAL", "pro"))
    upload = next(f for f in project.features if f.name == "max_upload_mb")
    override = SegmentOverride(
        segment=pro, feature=upload, environment=environment, enabled=True, priority=1
    )
    override.value = 250
    db.session.add(override)
    vip = make_identity(environment, "vip-user", {"plan": "free"})
    identity_override = IdentityOverride(
        identity=vip,
        environment_id=environment.id,
        enabled=True,
        feature=next(f for f in project.features if f.name == "welcome"),
    )
    identity_override.value = "Hello VIP"
    db.session.add(identity_override)
    server = ServerKey(environment=environment, name="backend")
    revoked = ServerKey(environment=environment, name="old")
    db.session.add_all([server, revoked])
    revoked.revoked_at = utcnow()
    db.session.flush()
    return SdkEnvironment(environment, environment.client_key, server.key, revoked.key)


@pytest.fixture
def sdk_env(app) -> SdkEnvironment:
    env = build_sdk_environment()
    db.session.commit()
    return env
