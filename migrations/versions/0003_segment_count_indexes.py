"""segment count indexes: trait probes that cover identity_id (index-only scans)

Segment member counts (services/segments/sql_translate.py) count identity ids straight
from trait index ranges: (environment, key, prefix, type) for texts and booleans,
(environment, key, number) for numbers. With identity_id (and value_type) in the index,
PostgreSQL answers them with index-only scans instead of visiting every heap page.
The new indexes are built before the old ones are dropped, so probes never lose an index.

Revision ID: 0003_segment_count_indexes
Revises: 0002_user_preferences
"""
from alembic import op

revision = "0003_segment_count_indexes"
down_revision = "0002_user_preferences"
branch_labels = None
depends_on = None

PREFIX = ["environment_id", "key", "value_prefix"]
NUMBER = ["environment_id", "key", "value_num"]


def upgrade():
    with op.batch_alter_table("traits", schema=None) as batch_op:
        batch_op.create_index(
            "ix_traits_env_key_prefix_cover", PREFIX + ["value_type", "identity_id"], unique=False
        )
        batch_op.create_index("ix_traits_env_key_num_cover", NUMBER + ["identity_id"], unique=False)
        batch_op.drop_index("ix_traits_env_key_prefix")
        batch_op.drop_index("ix_traits_env_key_num")


def downgrade():
    with op.batch_alter_table("traits", schema=None) as batch_op:
        batch_op.create_index("ix_traits_env_key_prefix", PREFIX, unique=False)
        batch_op.create_index("ix_traits_env_key_num", NUMBER, unique=False)
        batch_op.drop_index("ix_traits_env_key_num_cover")
        batch_op.drop_index("ix_traits_env_key_prefix_cover")
