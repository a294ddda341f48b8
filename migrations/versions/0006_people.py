"""people: invitations, password-reset links and session versions

Revision ID: 0006_people
Revises: 0005_trait_column_defaults
"""
from alembic import op
import sqlalchemy as sa

revision = "0006_people"
down_revision = "0005_trait_column_defaults"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("invitation_pending", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(
            sa.Column("session_version", sa.Integer(), nullable=False, server_default="0")
        )
    # The server defaults only fill the existing rows; the model sets both on insert.
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.alter_column("invitation_pending", server_default=None)
        batch_op.alter_column("session_version", server_default=None)
    op.create_table(
        "account_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.String(length=20), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("used_at", sa.DateTime(), nullable=True),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "purpose IN ('invitation', 'password_reset')", name=op.f("ck_account_tokens_purpose")
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"],
            name=op.f("fk_account_tokens_created_by_id_users"), ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"],
            name=op.f("fk_account_tokens_user_id_users"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_account_tokens_token_hash")),
    )
    with op.batch_alter_table("account_tokens", schema=None) as batch_op:
        batch_op.create_index("ix_account_tokens_user", ["user_id"], unique=False)


def downgrade():
    with op.batch_alter_table("account_tokens", schema=None) as batch_op:
        batch_op.drop_index("ix_account_tokens_user")
    op.drop_table("account_tokens")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("session_version")
        batch_op.drop_column("invitation_pending")
