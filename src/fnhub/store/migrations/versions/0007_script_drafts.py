"""script drafts: unpublished code, one per script (core branch)

Revision ID: 0007_script_drafts
Revises: 0001_core
Create Date: 2026-12-06 12:00:00.000000
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0007_script_drafts"
down_revision = "0001_core"  # a branch of its own beside 0006_task_attempts
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "script_drafts",
        sa.Column("script", sa.String(length=128), nullable=False),
        sa.Column(
            "code",
            sa.Text()
            .with_variant(mysql.LONGTEXT(), "mariadb")
            .with_variant(mysql.LONGTEXT(), "mysql"),
            nullable=False,
        ),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("base_version", sa.Integer(), nullable=True),
        sa.Column("author", sa.String(length=140), nullable=False),
        sa.Column("updated_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("script"),
    )


def downgrade() -> None:
    op.drop_table("script_drafts")
