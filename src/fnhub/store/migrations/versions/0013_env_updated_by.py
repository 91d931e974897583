"""env_vars: updated_by, who made the last change (the console's list shows it)

Rows written before it say "" (the audit log still has who changed them).

Revision ID: 0013_env_updated_by
Revises: 0011_envs_and_store
Create Date: 2026-12-07 02:40:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0013_env_updated_by"
down_revision = "0011_envs_and_store"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("env_vars") as batch:
        batch.add_column(
            sa.Column("updated_by", sa.String(length=140), nullable=False, server_default="")
        )


def downgrade() -> None:
    with op.batch_alter_table("env_vars") as batch:
        batch.drop_column("updated_by")
