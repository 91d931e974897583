"""task records: an index for the listing filtered by function and status together

Revision ID: 0008_records_function_status
Revises: 0001_core
Create Date: 2026-12-06 13:00:00.000000
"""

from alembic import op

revision = "0008_records_function_status"
down_revision = "0001_core"  # a branch of its own: the columns are 0001_core's
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("task_records", schema=None) as batch_op:
        batch_op.create_index(
            "ix_task_records_function_status", ["function", "status", "trigger_time"]
        )


def downgrade() -> None:
    with op.batch_alter_table("task_records", schema=None) as batch_op:
        batch_op.drop_index("ix_task_records_function_status")
