"""The database handle: engine, sessions and schema migration, for SQLite, PostgreSQL and MySQL."""

from __future__ import annotations

import ast
import contextlib
import fcntl
import importlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import CursorResult, Engine, Result, create_engine, event, text
from sqlalchemy.exc import DBAPIError

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
#: the migration lock: PostgreSQL's advisory lock key (any fixed 64-bit number), MySQL's name
MIGRATION_LOCK_KEY = 0x666E6875625F6D67  # "fnhub_mg"
MIGRATION_LOCK_NAME = "fnhub-migrate"
MIGRATION_LOCK_WAIT_SECONDS = 600


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL lets readers run beside the one writer; busy_timeout waits instead of failing."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


_REVISION = re.compile(r"^revision\s*=\s*(.+?)\s*(?:#.*)?$", re.M)
_DOWN_REVISION = re.compile(r"^down_revision\s*=\s*(.+?)\s*(?:#.*)?$", re.M)


def script_heads(versions: Path = MIGRATIONS_DIR / "versions") -> frozenset[str] | None:
    """The heads of the migration scripts, read from their `revision` and `down_revision`
    lines without importing Alembic; None when a script says them otherwise (Alembic decides
    then). `tests/test_migrations.py` checks them against Alembic's."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in versions.glob("*.py"):
        source = path.read_text()
        revision, down = _REVISION.findall(source), _DOWN_REVISION.findall(source)
        if len(revision) != 1 or len(down) != 1:
            return None
        try:
            name, parent = ast.literal_eval(revision[0]), ast.literal_eval(down[0])
        except (ValueError, SyntaxError):
            return None
        parent = () if parent is None else (parent,) if isinstance(parent, str) else parent
        if not isinstance(name, str) or not all(isinstance(p, str) for p in parent):
            return None
        revisions.add(name)
        parents.update(parent)
    return frozenset(revisions - parents) if revisions else None


def rows_changed(result: Result[Any]) -> int:
    """How many rows an UPDATE or DELETE run through a Session changed. Session.execute is typed
    as returning any Result; a DML statement's is a CursorResult, the kind that counts rows."""
    if not isinstance(result, CursorResult):
        raise TypeError(f"not the result of an UPDATE or DELETE: {type(result).__name__}")
    return result.rowcount


def upsert_insert(dialect: str, table: Any) -> Any:
    """INSERT into `table` as dialect `dialect` ("mysql", "mariadb", "postgresql" or "sqlite")
    has it, with its upsert clause (`on_duplicate_key_update`, `on_conflict_do_update`). Its
    module only is imported: a process uses one database, and importing PostgreSQL's dialect
    in a process using SQLite cost about 20 ms of CPU at every start (MySQL's is imported by
    `store.models` for its column types)."""
    name = "mysql" if dialect in ("mysql", "mariadb") else dialect
    if name not in ("mysql", "postgresql", "sqlite"):
        raise ValueError(f"no upsert for the {dialect} dialect")
    return importlib.import_module(f"sqlalchemy.dialects.{name}").insert(table)


def make_engine(url: str) -> Engine:
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    elif url.startswith("mysql://"):
        url = "mysql+pymysql://" + url.removeprefix("mysql://")
    kwargs: dict[str, Any] = {"future": True}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 10}
    else:
        kwargs.update(pool_pre_ping=True, pool_recycle=1800)
    engine = create_engine(url, **kwargs)
    if url.startswith("sqlite"):
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


class Database:
    """Owns one engine and its session factory; `migrate()` brings the schema to the newest.

    The ORM is imported by the first session: a beat reads with SQLAlchemy Core only
    (`cron.spec.read_jobs`) and starts without it."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._sessions: sessionmaker[Session] | None = None

    @property
    def sessions(self) -> sessionmaker[Session]:
        if self._sessions is None:
            from sqlalchemy.orm import sessionmaker

            self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        return self._sessions

    def session(self) -> Session:
        return self.sessions()

    def alembic_config(self) -> Config:
        from alembic.config import Config  # a third of a CLI command's start-up: only when used

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        config.attributes["engine"] = self.engine
        return config

    def migrate(self) -> None:
        """Bring the schema to the newest, one process at a time: roles started together on a
        new database (server, beat, worker's recorder) would otherwise race to create the same
        tables, and all but one fail."""
        if self.at_heads():
            return  # the usual start: Alembic (a third of the check's CPU) is not imported
        from alembic import command

        with self._migration_lock():
            command.upgrade(self.alembic_config(), "heads")

    def at_heads(self) -> bool:
        """Whether the schema is at the scripts' heads already (without a lock: a migration
        running elsewhere commits its version with its changes, or after each on MySQL)."""
        heads = script_heads()
        if heads is None:
            return False
        try:
            with self.engine.connect() as conn:
                stored = conn.execute(text("SELECT version_num FROM alembic_version")).scalars()
                return set(stored) == heads
        except DBAPIError:  # a new database: no version table yet
            return False

    @contextlib.contextmanager
    def _migration_lock(self) -> Iterator[None]:
        """A lock across processes and machines, held while migrating: PostgreSQL's advisory
        lock, MySQL's GET_LOCK (both end with their session, so a killed migrator frees it),
        a file lock beside a SQLite database."""
        dialect = self.engine.dialect.name
        if dialect == "sqlite":
            path = self.engine.url.database
            if not path or path == ":memory:":
                yield
                return
            with open(f"{path}.migrate-lock", "w") as lock_file:
                fcntl.flock(lock_file, fcntl.LOCK_EX)
                yield
            return
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            if dialect == "postgresql":
                conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            else:
                taken = conn.execute(
                    text("SELECT GET_LOCK(:name, :wait)"),
                    {"name": MIGRATION_LOCK_NAME, "wait": MIGRATION_LOCK_WAIT_SECONDS},
                ).scalar()
                if taken != 1:
                    raise RuntimeError(
                        f"another process held the migration lock {MIGRATION_LOCK_NAME!r} for "
                        f"{MIGRATION_LOCK_WAIT_SECONDS} s"
                    )
            try:
                yield
            finally:
                if dialect == "postgresql":
                    conn.execute(
                        text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY}
                    )
                else:
                    conn.execute(text("SELECT RELEASE_LOCK(:name)"), {"name": MIGRATION_LOCK_NAME})

    def dispose(self) -> None:
        self.engine.dispose()
