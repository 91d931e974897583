"""connectors: provisioned (declared in fnhub.yaml, owned by `fnhub apply`)

Revision ID: 0012_connector_provisioned
Revises: 0002_server
Create Date: 2026-12-06 20:20:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_connector_provisioned"
down_revision = "0002_server"  # a branch of its own: connectors is the server branch's table
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "connectors",
        sa.Column("provisioned", sa.Boolean(), nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    with op.batch_alter_table("connectors") as batch:
        batch.drop_column("provisioned")
