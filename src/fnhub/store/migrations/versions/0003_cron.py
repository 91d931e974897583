"""cron jobs

Revision ID: 0003_cron
Revises: 0001_core
Create Date: 2026-11-23 13:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_cron"
down_revision = "0001_core"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cron_jobs",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("function", sa.String(length=256), nullable=False),
        sa.Column("expr", sa.String(length=256), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=True),
        sa.Column("kwargs", sa.JSON(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=True),
        sa.Column("queue", sa.String(length=64), nullable=True),
        sa.Column("record_limit", sa.Integer(), nullable=True),
        sa.Column("misfire", sa.String(length=16), nullable=False),
        sa.Column("overlap", sa.String(length=16), nullable=False),
        sa.Column("title", sa.String(length=256), nullable=False),
        sa.Column("provisioned", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("updated_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("cron_jobs")
