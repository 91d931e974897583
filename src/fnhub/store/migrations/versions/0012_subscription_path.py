"""subscriptions: the path a subscription's messages take ("queued" or "direct"; issue 24)

Existing rows keep the queued path: the column's server default says so.

Revision ID: 0012_subscription_path
Revises: 0005_subscriptions
Create Date: 2026-12-06 20:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_subscription_path"
down_revision = "0005_subscriptions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("subscriptions") as batch:
        batch.add_column(
            sa.Column("path", sa.String(length=16), nullable=False, server_default="queued")
        )


def downgrade() -> None:
    with op.batch_alter_table("subscriptions") as batch:
        batch.drop_column("path")
