"""user preferences

Revision ID: 0002_user_preferences
Revises: 0001_initial
"""
from alembic import op
import sqlalchemy as sa

revision = "0002_user_preferences"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("preferences", sa.JSON(), nullable=False, server_default=sa.text("'{}'"))
        )


def downgrade():
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("preferences")
