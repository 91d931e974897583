"""The Alembic migrations create exactly the tables the models declare."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from fnhub.store.all_models import metadata
from fnhub.store.db import Database


def test_migrations_match_the_models(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'm.db'}")
    db.migrate()
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, metadata) == []
    assert {"scripts", "task_records", "subscriptions", "connectors", "cron_jobs"} <= set(
        metadata.tables
    )
    db.dispose()
