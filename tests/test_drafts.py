"""Script drafts on SQLite, PostgreSQL and MariaDB: the migration goes down and up again, a draft
keeps large code, its base version and author, and a publish only removes the code it published."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from tests.conftest import MYSQL_URL, POSTGRES_URL

from fnhub.record_search import include_name
from fnhub.scripts.drafts import DraftStore
from fnhub.scripts.store import code_hash
from fnhub.store.all_models import metadata
from fnhub.store.db import Database
from fnhub.store.models import Script


@pytest.fixture(params=["sqlite", "postgresql", "mysql"])
def database(request, tmp_path) -> Iterator[Database]:  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        db = Database(f"sqlite:///{tmp_path / 'drafts.db'}")
        yield db
        db.dispose()
        return
    name = f"fnhub_drafts_{uuid.uuid4().hex[:8]}"
    server = POSTGRES_URL if request.param == "postgresql" else MYSQL_URL
    admin = Database(server + ("/postgres" if request.param == "postgresql" else "")).engine
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    db = Database(f"{server}/{name}")
    try:
        yield db
    finally:
        db.dispose()
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            force = " WITH (FORCE)" if request.param == "postgresql" else ""
            conn.execute(sa.text(f"DROP DATABASE {name}{force}"))
        admin.dispose()


def test_drafts_migrate_down_and_up_and_keep_what_was_saved(database: Database) -> None:
    db = database
    db.migrate()
    command.downgrade(db.alembic_config(), "0007_script_drafts@-1")
    assert "script_drafts" not in sa.inspect(db.engine).get_table_names()
    db.migrate()
    with db.engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "include_name": include_name}
        )
        assert compare_metadata(context, metadata) == []

    drafts = DraftStore(db)
    big = "x = 1\n" * 20_000  # past MySQL's 64 KiB TEXT
    saved = drafts.save("fresh", big, author="user:alice")
    assert (saved.base_version, saved.author, saved.hash) == (None, "user:alice", code_hash(big))
    assert drafts.get("fresh") == saved

    with db.session() as session, session.begin():
        session.add(Script(name="old", active_version=4, active_hash="h", updated_at=1.0))
    assert drafts.save("old", "a = 1\n", author="key:k1").base_version == 4  # the active one
    assert drafts.save("old", "a = 2\n", author="key:k2").base_version == 4  # kept
    assert drafts.save("old", "a = 3\n", author="key:k2", base_version=2).base_version == 2
    assert [d["script"] for d in drafts.list()] == ["old", "fresh"]  # newest first
    assert drafts.list()[1]["bytes"] == len(big)

    assert not drafts.discard_published("old", code_hash("a = 2\n"))  # newer work: stays
    assert drafts.discard_published("old", code_hash("a = 3\n"))
    assert drafts.get("old") is None
    assert drafts.delete("fresh") and not drafts.delete("fresh")
    assert drafts.list() == []
