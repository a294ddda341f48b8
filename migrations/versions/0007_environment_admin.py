"""environment admin: an environment's identity hashing key (kept by clones), server key use

Revision ID: 0007_environment_admin
Revises: 0006_people
"""
from alembic import op
import sqlalchemy as sa

revision = "0007_environment_admin"
down_revision = "0006_people"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("environments") as batch:
        batch.add_column(sa.Column("hashing_key", sa.String(length=255), nullable=True))
    with op.batch_alter_table("server_keys") as batch:
        batch.add_column(sa.Column("last_used_at", sa.DateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table("server_keys") as batch:
        batch.drop_column("last_used_at")
    with op.batch_alter_table("environments") as batch:
        batch.drop_column("hashing_key")
