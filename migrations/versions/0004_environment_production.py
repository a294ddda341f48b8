"""environment production setting

Environments get a ``production`` flag (issue 15): in a production environment a QA user
may link only identities that are recognisably their own. Existing environments start as
not production (the server default); an admin marks them on the environment page.

Revision ID: 0004_environment_production
Revises: 0003_segment_count_indexes
"""
from alembic import op
import sqlalchemy as sa

revision = "0004_environment_production"
down_revision = "0003_segment_count_indexes"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("environments", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("production", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade():
    with op.batch_alter_table("environments", schema=None) as batch_op:
        batch_op.drop_column("production")
