"""Migration 0006_accounts on a database that already holds API keys, on SQLite, PostgreSQL and
MariaDB: existing keys become admins, and users, sessions and the audit log work there."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from tests.conftest import MYSQL_URL, POSTGRES_URL

from fnhub import audit
from fnhub.accounts.models import UserSession
from fnhub.accounts.sessions import SessionStore
from fnhub.accounts.users import create_user, remove_user
from fnhub.store.db import Database

BEFORE_ACCOUNTS = ("0002_server", "0003_cron", "0004_websub", "0005_subscriptions")


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def empty_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        db = Database(f"sqlite:///{tmp_path / 'm.db'}")
        yield db
        db.dispose()
        return
    server = POSTGRES_URL if request.param == "postgresql" else MYSQL_URL
    maintenance = "postgres" if request.param == "postgresql" else "mysql"
    name = f"fnhub_acc_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(
        Database(f"{server}/{maintenance}").engine.url, isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    db = Database(f"{server}/{name}")
    try:
        yield db
    finally:
        db.dispose()
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE {name}"))
        admin.dispose()


def test_upgrade_keeps_keys_as_admins_and_adds_accounts(empty_db: Database) -> None:
    db = empty_db
    config = db.alembic_config()
    for revision in BEFORE_ACCOUNTS:  # the schema as it was before accounts
        command.upgrade(config, revision)
    assert "users" not in sa.inspect(db.engine).get_table_names()
    with db.engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO api_keys (id, name, token_hash, created_at) "
                "VALUES ('old1', 'legacy', :h, :t)"
            ),
            {"h": "0" * 64, "t": time.time()},
        )

    db.migrate()

    inspector = sa.inspect(db.engine)
    assert {"users", "user_sessions", "audit_log"} <= set(inspector.get_table_names())
    with db.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT role FROM api_keys")).scalar_one() == "admin"
    user = create_user(db, "zoe", "a long password", "developer", actor=audit.CLI)
    sessions = SessionStore(db, idle_seconds=60, max_seconds=600)
    session_id = sessions.start(user, "127.0.0.1")
    assert sessions.lookup(session_id) is not None
    items, _ = audit.page(db, resource="user:zoe")
    assert [e["action"] for e in items] == ["user.sign_in", "user.create"]
    assert items[1]["after"] == {"username": "zoe", "role": "developer", "disabled": False}
    remove_user(db, "zoe", actor=audit.CLI)  # her sessions go with her
    with db.session() as s:
        assert s.execute(sa.select(sa.func.count()).select_from(UserSession)).scalar() == 0
    assert sessions.lookup(session_id) is None
