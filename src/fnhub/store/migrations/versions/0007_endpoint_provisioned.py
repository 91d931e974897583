"""endpoints: provisioned (declared in fnhub.yaml, owned by `fnhub apply`)

Revision ID: 0007_endpoint_provisioned
Revises: 0006_endpoint_show_logs
Create Date: 2026-12-08 10:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_endpoint_provisioned"
down_revision = "0006_endpoint_show_logs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "endpoints",
        sa.Column("provisioned", sa.Boolean(), nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    with op.batch_alter_table("endpoints") as batch:
        batch.drop_column("provisioned")
