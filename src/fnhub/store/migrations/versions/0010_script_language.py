"""scripts: the language of each version ("python" or "javascript"; issue 21)

Existing rows are Python scripts: the column's server default says so.

Revision ID: 0010_script_language
Revises: 0001_core
Create Date: 2026-12-06 17:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_script_language"
down_revision = "0001_core"  # a branch of its own: script_versions is 0001_core's
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("script_versions") as batch:
        batch.add_column(
            sa.Column("language", sa.String(length=16), nullable=False, server_default="python")
        )


def downgrade() -> None:
    with op.batch_alter_table("script_versions") as batch:
        batch.drop_column("language")
