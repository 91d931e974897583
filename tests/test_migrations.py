"""The Alembic migrations create exactly the tables the models declare."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from tests.conftest import fresh_database

from fnhub.record_search import include_name
from fnhub.store.all_models import metadata
from fnhub.store.db import Database, script_heads


def test_migrations_match_the_models(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'm.db'}")
    db.migrate()
    with db.engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "include_name": include_name}
        )
        assert compare_metadata(context, metadata) == []
    assert {"scripts", "task_records", "subscriptions", "connectors", "cron_jobs"} <= set(
        metadata.tables
    )
    db.dispose()


@pytest.fixture(params=["sqlite", "postgresql", "mysql"])
def empty_database(request, tmp_path) -> Iterator[Database]:
    gen = fresh_database(request.param, tmp_path)
    db = Database(next(gen))
    yield db
    db.dispose()
    gen.close()


def test_task_attempts_migration_up_down_up_on_every_database(empty_database):
    """The records revision (task_attempts, the listing's indexes) applies over rows written
    before it, goes down to the core schema and up again, and leaves the models' schema."""
    db = empty_database
    config = db.alembic_config()
    command.upgrade(config, "0001_core")
    with db.engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO task_records (id, function, version, origin, origin_id, queue,"
                " status, attempt, trigger_time) VALUES ('t1', 's.f', '', 'direct', 's.f',"
                " 'sync', 'success', 1, 1.5)"
            )
        )
    db.migrate()
    command.downgrade(config, "0006_task_attempts@-1")
    assert "task_attempts" not in sa.inspect(db.engine).get_table_names()
    db.migrate()
    inspector = sa.inspect(db.engine)
    indexes = {i["name"]: i["column_names"] for i in inspector.get_indexes("task_records")}
    assert indexes["ix_task_records_status"] == ["status", "trigger_time"]
    assert {c["name"] for c in inspector.get_columns("task_attempts")} >= {"task_id", "attempt"}
    with db.engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "include_name": include_name}
        )
        assert compare_metadata(context, metadata) == []
        assert conn.execute(sa.text("SELECT id FROM task_records")).scalars().all() == ["t1"]


def test_envs_and_store_migration_up_down_up_on_every_database(empty_database):
    """0011_envs_and_store goes up over a database of the other branches, 0013_env_updated_by
    down (its column gone, the rows kept), 0011 down (its tables
    gone, the others' rows kept) and up again to the models' schema; keys that differ only in
    case or trailing spaces stay apart (MySQL's collations would merge them)."""
    from fnhub.envs.kv import Store

    db = empty_database
    config = db.alembic_config()
    db.migrate()
    store = Store(db)
    store.mset({"k": 1, "K": 2, "k ": 3}, scope="s")
    assert store.getall(scope="s") == {"K": 2, "k": 1, "k ": 3}
    with db.engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO env_vars (name, type, value, description, provisioned, created_at,"
                " updated_at, updated_by) VALUES ('A', 'string', 'x', '', false, 1, 2, 'cli')"
            )
        )
    # 0013_env_updated_by down: the column goes, the variable stays
    command.downgrade(config, "0011_envs_and_store")
    columns = {c["name"] for c in sa.inspect(db.engine).get_columns("env_vars")}
    assert "updated_by" not in columns and "updated_at" in columns
    with db.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT name FROM env_vars")).scalars().all() == ["A"]
    command.downgrade(config, "0011_envs_and_store@-1")
    tables = set(sa.inspect(db.engine).get_table_names())
    assert "store_items" not in tables and "env_vars" not in tables
    assert {"scripts", "task_records", "cron_jobs"} <= tables
    db.migrate()
    with db.engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "include_name": include_name}
        )
        assert compare_metadata(context, metadata) == []
    assert store.getall(scope="s") == {}


def _migrate_when_told(url: str, go: Any, answers: Any) -> None:
    go.wait()
    try:
        Database(url).migrate()
        answers.put("ok")
    except Exception as exc:  # the answer is the test's evidence
        answers.put(f"{type(exc).__name__}: {exc}"[:300])


@pytest.mark.parametrize("kind", ["sqlite", "postgresql", "mysql"])
def test_roles_starting_together_on_a_new_database_all_migrate_it(kind, tmp_path):
    """A server, a beat and a worker's recorder started at once on a new database migrate it
    one after the other (without a lock, all but one failed: duplicate tables)."""
    gen = fresh_database(kind, tmp_path)
    url = next(gen)
    try:
        spawn = multiprocessing.get_context("spawn")
        go, answers = spawn.Event(), spawn.Queue()
        racers = [spawn.Process(target=_migrate_when_told, args=(url, go, answers)) for _ in "abc"]
        for racer in racers:
            racer.start()
        time.sleep(2)  # every process imported and waits at the line
        go.set()
        for racer in racers:
            racer.join(120)
        assert [answers.get(timeout=5) for _ in racers] == ["ok"] * 3
        db = Database(url)
        with db.engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "include_name": include_name}
            )
            assert compare_metadata(context, metadata) == []
        db.dispose()
    finally:
        gen.close()


def test_script_heads_are_alembics(tmp_path):
    """The heads read without Alembic (`script_heads`, the check at every start) are the ones
    Alembic finds, and a script they cannot be read from leaves the decision to Alembic."""
    from alembic.script import ScriptDirectory

    db = Database("sqlite://")
    assert script_heads() == set(ScriptDirectory.from_config(db.alembic_config()).get_heads())
    odd = tmp_path / "versions"
    odd.mkdir()
    (odd / "0001_x.py").write_text('revision = "0001_x"\ndown_revision = None\n')
    (odd / "0002_y.py").write_text('revision = "0002_y"\ndown_revision = ("0001_x", "0003")\n')
    assert script_heads(odd) == {"0002_y"}
    (odd / "0003.py").write_text('revision = compute()\ndown_revision = "0001_x"\n')
    assert script_heads(odd) is None


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_migrated_database_is_checked_without_alembic(kind, tmp_path):
    """A role's start on a migrated database does not import Alembic; one a revision behind
    is migrated (the check sees it is not at the heads)."""
    gen = fresh_database(kind, tmp_path)
    url = next(gen)
    try:
        db = Database(url)
        db.migrate()
        check = (
            "import sys\nfrom fnhub.store.db import Database\n"
            f"Database({url!r}).migrate()\nprint('alembic' in sys.modules)"
        )
        out = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True)
        assert out.stdout.strip() == "False", out.stderr
        command.downgrade(db.alembic_config(), "0013_env_updated_by@-1")
        assert not db.at_heads()
        db.migrate()
        assert db.at_heads()
        db.dispose()
    finally:
        next(gen, None)
