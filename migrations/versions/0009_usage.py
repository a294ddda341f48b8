"""usage: option keys (variants), flag evaluation counts per hour, flags seen per identity

Revision ID: 0009_usage
Revises: 0007_environment_admin
"""
from alembic import op
import sqlalchemy as sa

revision = "0009_usage"
down_revision = "0007_environment_admin"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("multivariate_options", schema=None) as batch_op:
        batch_op.add_column(sa.Column("key", sa.String(length=100), nullable=True))
    # Existing options get a key unique within their feature; editors can rename them.
    op.execute("UPDATE multivariate_options SET key = 'variant-' || CAST(id AS VARCHAR(20))")
    with op.batch_alter_table("multivariate_options", schema=None) as batch_op:
        batch_op.alter_column("key", existing_type=sa.String(length=100), nullable=False)
        batch_op.create_unique_constraint(
            batch_op.f("uq_multivariate_options_feature_id_key"), ["feature_id", "key"]
        )

    op.create_table(
        "flag_usage",
        sa.Column("environment_id", sa.Integer(), nullable=False),
        sa.Column("feature_id", sa.Integer(), nullable=False),
        sa.Column("hour", sa.DateTime(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["environment_id"], ["environments.id"],
            name=op.f("fk_flag_usage_environment_id_environments"), ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["feature_id"], ["features.id"],
            name=op.f("fk_flag_usage_feature_id_features"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("environment_id", "feature_id", "hour", name=op.f("pk_flag_usage")),
    )
    op.create_index("ix_flag_usage_hour", "flag_usage", ["hour"], unique=False)

    op.create_table(
        "flag_usage_daily",
        sa.Column("environment_id", sa.Integer(), nullable=False),
        sa.Column("feature_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.DateTime(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("last_hour", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["environment_id"], ["environments.id"],
            name=op.f("fk_flag_usage_daily_environment_id_environments"), ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["feature_id"], ["features.id"],
            name=op.f("fk_flag_usage_daily_feature_id_features"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "environment_id", "feature_id", "day", name=op.f("pk_flag_usage_daily")
        ),
    )
    op.create_index("ix_flag_usage_daily_day", "flag_usage_daily", ["day"], unique=False)

    op.create_table(
        "flag_seen",
        sa.Column("identity_id", sa.Integer(), nullable=False),
        sa.Column("feature_id", sa.Integer(), nullable=False),
        sa.Column("variant", sa.String(length=100), nullable=False),
        sa.Column("environment_id", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(), nullable=False),
        sa.Column("value_type", sa.String(length=8), nullable=False),
        sa.Column("value_text", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["environment_id"], ["environments.id"],
            name=op.f("fk_flag_seen_environment_id_environments"), ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["feature_id"], ["features.id"],
            name=op.f("fk_flag_seen_feature_id_features"), ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["identity_id"], ["identities.id"],
            name=op.f("fk_flag_seen_identity_id_identities"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("identity_id", "feature_id", "variant", name=op.f("pk_flag_seen")),
    )
    op.create_index(
        "ix_flag_seen_feature", "flag_seen",
        ["environment_id", "feature_id", "last_seen_at"], unique=False,
    )
    op.create_index("ix_flag_seen_last_seen", "flag_seen", ["last_seen_at"], unique=False)


def downgrade():
    op.drop_index("ix_flag_seen_last_seen", table_name="flag_seen")
    op.drop_index("ix_flag_seen_feature", table_name="flag_seen")
    op.drop_table("flag_seen")
    op.drop_index("ix_flag_usage_daily_day", table_name="flag_usage_daily")
    op.drop_table("flag_usage_daily")
    op.drop_index("ix_flag_usage_hour", table_name="flag_usage")
    op.drop_table("flag_usage")
    with op.batch_alter_table("multivariate_options", schema=None) as batch_op:
        batch_op.drop_constraint("uq_multivariate_options_feature_id_key", type_="unique")
        batch_op.drop_column("key")
