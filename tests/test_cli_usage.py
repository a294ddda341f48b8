"""flask prune-analytics: the retention setting, --days, and its wording."""

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from tests.factories import make_environment, make_feature, make_project
from webapp.clock import utcnow
from webapp.extensions import db
from webapp.models import FlagUsage
from webapp.services.usage.recorder import UsageBuffer

# The command's options and wording: SQLite (the batched deletes run on both databases in
# tests/services/test_usage.py).
pytestmark = pytest.mark.databases("sqlite")


@pytest.fixture
def counts(app):
    env = make_environment(make_project(), "Production")
    feature = make_feature(env.project, "dark_mode")
    db.session.commit()
    buffer = UsageBuffer(db.engine, interval=None)
    for days in (1, 50, 100):
        buffer.add_counts(env.id, {feature.id: 1}, utcnow() - timedelta(days=days))
    buffer.flush()


def _rows():
    return db.session.scalar(select(func.count()).select_from(FlagUsage))


def test_prune_analytics__default_retention_90_days(runner, counts):
    result = runner.invoke(args=["prune-analytics"])
    assert result.exit_code == 0, result.output
    assert "Removed 1 hourly count row and 0 seen rows older than 90 days" in result.output
    assert _rows() == 2


@pytest.mark.parametrize("app_config", [{"USAGE_RETENTION_DAYS": 30}])
def test_prune_analytics__setting_and_option(runner, counts, app_config):
    assert "older than 30 days" in runner.invoke(args=["prune-analytics"]).output
    assert _rows() == 1
    result = runner.invoke(args=["prune-analytics", "--days", "0"])
    assert result.exit_code == 2 and "0 is not in the range x>=1" in result.output
    assert _rows() == 1
