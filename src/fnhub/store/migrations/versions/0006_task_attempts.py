"""task records: every attempt kept (task_attempts), replay_of, indexes for the listing

Revision ID: 0006_task_attempts
Revises: 0001_core
Create Date: 2026-12-01 10:00:00.000000
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0006_task_attempts"
down_revision = "0001_core"
branch_labels = None
depends_on = None

LONG_TEXT = (
    sa.Text().with_variant(mysql.LONGTEXT(), "mariadb").with_variant(mysql.LONGTEXT(), "mysql")
)


def upgrade() -> None:
    op.create_table(
        "task_attempts",
        sa.Column("task_id", sa.String(length=32), nullable=False),
        sa.Column("attempt", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("trigger_time", sa.Double(), nullable=False),
        sa.Column("start_time", sa.Double(), nullable=True),
        sa.Column("end_time", sa.Double(), nullable=True),
        sa.Column("wait_ms", sa.Double(), nullable=True),
        sa.Column("run_ms", sa.Double(), nullable=True),
        sa.Column("error_type", sa.String(length=256), nullable=True),
        sa.Column("error_message", LONG_TEXT, nullable=True),
        sa.Column("traceback", LONG_TEXT, nullable=True),
        sa.Column("logs", LONG_TEXT, nullable=True),
        sa.PrimaryKeyConstraint("task_id", "attempt"),
    )
    with op.batch_alter_table("task_attempts", schema=None) as batch_op:
        batch_op.create_index("ix_task_attempts_trigger_time", ["trigger_time"], unique=False)
    with op.batch_alter_table("task_records", schema=None) as batch_op:
        batch_op.add_column(sa.Column("replay_of", sa.String(length=32), nullable=True))
        batch_op.drop_index("ix_task_records_status")
        batch_op.create_index("ix_task_records_status", ["status", "trigger_time"], unique=False)
        batch_op.create_index("ix_task_records_end_time", ["end_time"], unique=False)
        batch_op.create_index(
            "ix_task_records_origin_time", ["origin", "trigger_time"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("task_records", schema=None) as batch_op:
        batch_op.drop_index("ix_task_records_origin_time")
        batch_op.drop_index("ix_task_records_end_time")
        batch_op.drop_index("ix_task_records_status")
        batch_op.create_index("ix_task_records_status", ["status"], unique=False)
        batch_op.drop_column("replay_of")
    with op.batch_alter_table("task_attempts", schema=None) as batch_op:
        batch_op.drop_index("ix_task_attempts_trigger_time")
    op.drop_table("task_attempts")
