"""task records: an index for the error-text search on each database (see fnhub.record_search)

SQLite: an FTS5 trigram table over error_type and error_message with triggers keeping it, filled
from the rows already there (its rowids are task_records' rowids: a later migration that
rebuilds task_records must rebuild it too, `INSERT INTO task_records_search(task_records_search)
VALUES ('rebuild')`). PostgreSQL: pg_trgm GIN indexes, when the extension can be created (the
search scans otherwise). MySQL/MariaDB: one InnoDB FULLTEXT index over both columns.

Revision ID: 0009_records_error_search
Revises: 0008_records_function_status
Create Date: 2026-12-06 14:10:00.000000
"""

import logging

import sqlalchemy as sa
from alembic import op

revision = "0009_records_error_search"
down_revision = "0008_records_function_status"
branch_labels = None
depends_on = None

log = logging.getLogger(__name__)

TABLE = "task_records_search"
HAS_ERROR = "{row}.error_type IS NOT NULL OR {row}.error_message IS NOT NULL"
ADD = (
    f"INSERT INTO {TABLE}(rowid, error_type, error_message)"
    " SELECT new.rowid, new.error_type, new.error_message WHERE " + HAS_ERROR.format(row="new")
)
REMOVE = (
    f"INSERT INTO {TABLE}({TABLE}, rowid, error_type, error_message)"
    " SELECT 'delete', old.rowid, old.error_type, old.error_message WHERE "
    + HAS_ERROR.format(row="old")
)
SQLITE_UP = [
    f"CREATE VIRTUAL TABLE {TABLE} USING fts5(error_type, error_message,"
    " content='task_records', content_rowid='rowid', tokenize='trigram')",
    f"CREATE TRIGGER {TABLE}_insert AFTER INSERT ON task_records BEGIN {ADD}; END",
    f"CREATE TRIGGER {TABLE}_delete AFTER DELETE ON task_records BEGIN {REMOVE}; END",
    f"CREATE TRIGGER {TABLE}_update AFTER UPDATE OF error_type, error_message ON task_records"
    f" BEGIN {REMOVE}; {ADD}; END",
    f"INSERT INTO {TABLE}(rowid, error_type, error_message)"
    " SELECT rowid, error_type, error_message FROM task_records WHERE "
    + HAS_ERROR.format(row="task_records"),
]
SQLITE_DOWN = [
    f"DROP TRIGGER IF EXISTS {TABLE}_insert",
    f"DROP TRIGGER IF EXISTS {TABLE}_delete",
    f"DROP TRIGGER IF EXISTS {TABLE}_update",
    f"DROP TABLE IF EXISTS {TABLE}",
]
POSTGRES_INDEXES = {
    "ix_task_records_error_type_trgm": "error_type",
    "ix_task_records_error_message_trgm": "error_message",
}
MYSQL_INDEX = "ix_task_records_error_text"


def _create_pg_trgm(bind: sa.Connection) -> bool:
    """Whether pg_trgm is there (created now if this role may)."""
    try:
        with bind.begin_nested():
            bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
    except sa.exc.DBAPIError as exc:
        log.warning("no pg_trgm (%s): the error-text search scans task_records", exc.orig)
        return False
    return True


def upgrade() -> None:
    bind = op.get_bind()
    dialect = bind.dialect.name
    if dialect == "sqlite":
        try:  # FTS5's trigram tokenizer needs SQLite 3.34 (2020) built with FTS5
            bind.execute(sa.text(SQLITE_UP[0]))
        except sa.exc.OperationalError as exc:
            log.warning("no FTS5 trigram table (%s): the error-text search scans", exc.orig)
            return
        for statement in SQLITE_UP[1:]:
            op.execute(statement)
    elif dialect == "postgresql":
        if _create_pg_trgm(bind):
            for name, column in POSTGRES_INDEXES.items():
                op.create_index(
                    name,
                    "task_records",
                    [column],
                    postgresql_using="gin",
                    postgresql_ops={column: "gin_trgm_ops"},
                )
    elif dialect in ("mysql", "mariadb"):
        op.create_index(
            MYSQL_INDEX, "task_records", ["error_type", "error_message"], mysql_prefix="FULLTEXT"
        )


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for statement in SQLITE_DOWN:
            op.execute(statement)
    elif dialect == "postgresql":
        for name in POSTGRES_INDEXES:
            op.execute(f"DROP INDEX IF EXISTS {name}")
    elif dialect in ("mysql", "mariadb"):
        op.drop_index(MYSQL_INDEX, "task_records")
