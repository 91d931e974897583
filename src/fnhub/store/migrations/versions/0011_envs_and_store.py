"""envs: env variables scripts read (`fnhub.env`) and the script store (`fnhub.store`)

Revision ID: 0011_envs_and_store
Revises: 0001_core
Create Date: 2026-12-06 17:00:56.197957
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0011_envs_and_store"
down_revision = "0001_core"  # a branch of its own: the envs feature's tables
branch_labels = None
depends_on = None

LongText = (
    sa.Text().with_variant(mysql.LONGTEXT(), "mariadb").with_variant(mysql.LONGTEXT(), "mysql")
)


def _binary(length: int) -> sa.types.TypeEngine[str]:
    """`envs.models.ExactText`: bytes on MySQL/MariaDB, whose collations ignore case or
    trailing spaces."""
    exact = mysql.VARBINARY(length=length * 4)
    return sa.String(length=length).with_variant(exact, "mariadb").with_variant(exact, "mysql")


def upgrade() -> None:
    op.create_table(
        "env_vars",
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("value", LongText, nullable=False),
        sa.Column("description", sa.String(length=2000), nullable=False),
        sa.Column("provisioned", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("updated_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "store_items",
        sa.Column("scope", _binary(128), nullable=False),
        sa.Column("key", _binary(256), nullable=False),
        sa.Column("value", LongText, nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=True),
        sa.Column("updated_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("scope", "key"),
    )
    op.create_index("ix_store_items_expires_at", "store_items", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_store_items_expires_at", table_name="store_items")
    op.drop_table("store_items")
    op.drop_table("env_vars")
