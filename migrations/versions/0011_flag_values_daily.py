"""usage: flag_values_daily, the states each feature served per day (stale "constant" filter)

Revision ID: 0011_flag_values_daily
Revises: 0010_experiments
"""
import hashlib
from datetime import datetime

from alembic import op
import sqlalchemy as sa

revision = "0011_flag_values_daily"
down_revision = "0010_experiments"
branch_labels = None
depends_on = None

BATCH = 1000


def _state_key(enabled, value_type, value_text):
    # The same key as webapp.models.usage.state_key (a migration keeps its own copy; the
    # migration test checks the two agree).
    text = "" if value_text is None else value_text
    raw = f"{int(bool(enabled))}|{value_type}|{text}".encode("utf-8", "surrogatepass")
    return hashlib.sha256(raw).hexdigest()[:32]


def _as_datetime(value):
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def _backfill(values):
    """Fill the rollup from flag_seen, which keeps only each identity's last state and time:
    one row per (environment, feature, day of last_seen_at, state) counting those identities.
    Earlier days and states of an identity are not known any more, so the rollup's history
    (how long a value has been served) starts from the identities' last visits.
    """
    seen = sa.table(
        "flag_seen",
        sa.column("environment_id", sa.Integer()),
        sa.column("feature_id", sa.Integer()),
        sa.column("enabled", sa.Boolean()),
        sa.column("value_type", sa.String()),
        sa.column("value_text", sa.Text()),
        sa.column("last_seen_at", sa.DateTime()),
    )
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        day = sa.func.date_trunc("day", seen.c.last_seen_at)
    else:
        day = sa.func.date(seen.c.last_seen_at)  # 'YYYY-MM-DD'
    grouped = (
        sa.select(
            seen.c.environment_id, seen.c.feature_id, day, seen.c.enabled,
            seen.c.value_type, seen.c.value_text, sa.func.count(),
            sa.func.min(seen.c.last_seen_at), sa.func.max(seen.c.last_seen_at),
        )
        .group_by(
            seen.c.environment_id, seen.c.feature_id, day, seen.c.enabled,
            seen.c.value_type, seen.c.value_text,
        )
    )  # fmt: skip
    rows = []
    for env, feature, on, enabled, kind, text, count, first, last in bind.execute(grouped):
        rows.append({
            "environment_id": env, "feature_id": feature, "day": _as_datetime(on),
            "state_key": _state_key(enabled, kind, text), "enabled": bool(enabled),
            "value_type": kind, "value_text": text, "count": count,
            "first_at": _as_datetime(first), "last_at": _as_datetime(last),
        })  # fmt: skip
        if len(rows) >= BATCH:
            op.bulk_insert(values, rows)
            rows = []
    if rows:
        op.bulk_insert(values, rows)


def upgrade():
    values = op.create_table(
        "flag_values_daily",
        sa.Column("environment_id", sa.Integer(), nullable=False),
        sa.Column("feature_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.DateTime(), nullable=False),
        sa.Column("state_key", sa.String(length=32), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("first_at", sa.DateTime(), nullable=False),
        sa.Column("last_at", sa.DateTime(), nullable=False),
        sa.Column("value_type", sa.String(length=8), nullable=False),
        sa.Column("value_text", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["environment_id"], ["environments.id"],
            name=op.f("fk_flag_values_daily_environment_id_environments"), ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["feature_id"], ["features.id"],
            name=op.f("fk_flag_values_daily_feature_id_features"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "environment_id", "feature_id", "day", "state_key",
            name=op.f("pk_flag_values_daily"),
        ),
    )  # fmt: skip
    op.create_index("ix_flag_values_daily_day", "flag_values_daily", ["day"], unique=False)
    _backfill(values)


def downgrade():
    op.drop_index("ix_flag_values_daily_day", table_name="flag_values_daily")
    op.drop_table("flag_values_daily")
