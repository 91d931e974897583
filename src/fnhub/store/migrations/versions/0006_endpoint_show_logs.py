"""endpoints: show_logs (async pollers see the function's output only when allowed)

Revision ID: 0006_endpoint_show_logs
Revises: 0002_server
Create Date: 2026-11-30 10:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_endpoint_show_logs"
down_revision = "0002_server"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "endpoints",
        sa.Column("show_logs", sa.Boolean(), nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    with op.batch_alter_table("endpoints") as batch:
        batch.drop_column("show_logs")
