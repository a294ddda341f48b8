"""experiments: experiments on multivariate features, exposures, conversions, arm counters

Revision ID: 0010_experiments
Revises: 0009_usage
"""
from alembic import op
import sqlalchemy as sa

revision = "0010_experiments"
down_revision = "0009_usage"
branch_labels = None
depends_on = None


def _fk(table, column, target, ondelete="CASCADE"):
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}"), ondelete=ondelete
    )


def upgrade():
    op.create_table(
        "experiments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("environment_id", sa.Integer(), nullable=False),
        sa.Column("feature_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("goal_event", sa.String(length=200), nullable=False),
        sa.Column("segment_id", sa.Integer(), nullable=True),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("stopped_at", sa.DateTime(), nullable=True),
        sa.Column("pruned_at", sa.DateTime(), nullable=True),
        _fk("experiments", "environment_id", "environments"),
        _fk("experiments", "feature_id", "features"),
        _fk("experiments", "segment_id", "segments", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_experiments")),
    )
    op.create_index(
        "ix_experiments_environment_id", "experiments", ["environment_id"], unique=False
    )
    op.create_index("ix_experiments_segment_id", "experiments", ["segment_id"], unique=False)
    op.create_index(
        "ix_experiments_feature",
        "experiments",
        ["feature_id", "environment_id", "started_at"],
        unique=False,
    )
    op.create_index(
        "uq_experiments_running",
        "experiments",
        ["environment_id", "feature_id"],
        unique=True,
        sqlite_where=sa.text("stopped_at IS NULL"),
        postgresql_where=sa.text("stopped_at IS NULL"),
    )
    for table, time_column, extra in (
        ("experiment_exposures", "first_seen_at", []),
        (
            "experiment_conversions",
            "converted_at",
            [sa.Column("value", sa.String(length=200), nullable=True)],
        ),
    ):
        op.create_table(
            table,
            sa.Column("experiment_id", sa.Integer(), nullable=False),
            sa.Column("identity_id", sa.Integer(), nullable=False),
            sa.Column("variant", sa.String(length=200), nullable=False),
            sa.Column(time_column, sa.DateTime(), nullable=False),
            *extra,
            _fk(table, "experiment_id", "experiments"),
            _fk(table, "identity_id", "identities"),
            sa.PrimaryKeyConstraint("experiment_id", "identity_id", name=op.f(f"pk_{table}")),
        )
        op.create_index(f"ix_{table}_identity_id", table, ["identity_id"], unique=False)
    op.create_table(
        "experiment_arms",
        sa.Column("experiment_id", sa.Integer(), nullable=False),
        sa.Column("variant", sa.String(length=200), nullable=False),
        sa.Column("exposures", sa.Integer(), nullable=False),
        sa.Column("conversions", sa.Integer(), nullable=False),
        _fk("experiment_arms", "experiment_id", "experiments"),
        sa.PrimaryKeyConstraint("experiment_id", "variant", name=op.f("pk_experiment_arms")),
    )


def downgrade():
    op.drop_table("experiment_arms")
    op.drop_table("experiment_conversions")
    op.drop_table("experiment_exposures")
    op.drop_table("experiments")
