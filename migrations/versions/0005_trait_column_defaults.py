"""trait column defaults: the Users page columns an admin chose for an environment

Revision ID: 0005_trait_column_defaults
Revises: 0004_environment_production
"""
from alembic import op
import sqlalchemy as sa

revision = "0005_trait_column_defaults"
down_revision = "0004_environment_production"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "trait_column_defaults",
        sa.Column("environment_id", sa.Integer(), nullable=False),
        sa.Column("keys", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["environment_id"],
            ["environments.id"],
            name=op.f("fk_trait_column_defaults_environment_id_environments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("environment_id", name=op.f("pk_trait_column_defaults")),
    )


def downgrade():
    op.drop_table("trait_column_defaults")
