"""Searching task records' error text through an index on each database.

A scan of `LIKE '%text%'` reads every record: at 100,000 records that is the slowest call the
tasks page makes. Each database gets the index it is good at (migration
`0009_records_error_search`):

- SQLite: an FTS5 table with the trigram tokenizer over `error_type` and `error_message`,
  kept by triggers on `task_records` (its rowid is the record's rowid). A quoted trigram phrase
  matches any substring of three characters or more, in any case: the same meaning as before.
- PostgreSQL: pg_trgm GIN indexes on both columns, which `ILIKE '%text%'` uses as it stands.
  Without the extension (not installable) the same query scans: slower, same answers.
- MySQL/MariaDB: one InnoDB FULLTEXT index over both columns. It finds words, not substrings,
  so each word of the search (3+ characters, not a stop word) must *begin* a word of the error
  (`+word*`), and the whole text must still appear as typed (`LIKE`): "bad val" finds
  "bad value", "Error" does not find "ValueError" there.

Texts shorter than three characters (and, on MySQL, texts without a usable word) scan.

How many rows match decides the plan where the index alone cannot: on SQLite the FTS table
counts them first (a fraction of a millisecond); on MariaDB a listing first walks its own
index checking rows one by one (`mariadb_per_row`, at most `task_history.WALK_ROWS` rows) and
asks the FULLTEXT index only when that did not fill the page.
"""

from __future__ import annotations

import re
import weakref
from typing import Any

from sqlalchemy import Engine, Select, and_, func, inspect, literal_column, or_, select, table
from sqlalchemy.dialects import mysql
from sqlalchemy.sql.elements import ColumnClause, ColumnElement

from fnhub.store.models import TaskRecord, table_of

#: the SQLite FTS5 table (and the prefix of its shadow tables and triggers)
SQLITE_TABLE = "task_records_search"
#: the PostgreSQL trigram indexes and the MySQL FULLTEXT index
POSTGRES_INDEXES = ("ix_task_records_error_type_trgm", "ix_task_records_error_message_trgm")
MYSQL_INDEX = "ix_task_records_error_text"
#: shortest text a trigram index can find
MIN_CHARS = 3
#: SQLite: matches above which a listing walks its index rather than sorting every match
WALK_ABOVE = 2000
#: InnoDB's default stop words (innodb_ft_default_stopword): a `+word` of these finds nothing
MYSQL_STOPWORDS = frozenset((
    "a", "about", "an", "are", "as", "at", "be", "by", "com", "de", "en", "for", "from", "how",
    "i", "in", "is", "it", "la", "of", "on", "or", "that", "the", "this", "to", "und", "was",
    "what", "when", "where", "who", "will", "with", "www",
))  # fmt: skip


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """Alembic's `include_name`: leaves these indexes out when comparing the database's schema
    with the models (which cannot declare an FTS5 table or a dialect-only index)."""
    if not name:
        return True
    return not (name.startswith(SQLITE_TABLE) or name in POSTGRES_INDEXES or name == MYSQL_INDEX)


def _like(q: str) -> ColumnElement[bool]:
    return or_(
        TaskRecord.error_type.icontains(q, autoescape=True),
        TaskRecord.error_message.icontains(q, autoescape=True),
    )


def _ilike(q: str) -> ColumnElement[bool]:
    """`ILIKE` on the bare columns (what pg_trgm's index serves; `lower(x) LIKE` is not)."""
    pattern = "%" + re.sub(r"([\\%_])", r"\\\1", q) + "%"
    return or_(
        TaskRecord.error_type.ilike(pattern, escape="\\"),
        TaskRecord.error_message.ilike(pattern, escape="\\"),
    )


#: SQLite engines whose database has the FTS5 table (a database not migrated yet is asked again)
_indexed: weakref.WeakSet[Engine] = weakref.WeakSet()


def _has_sqlite_table(engine: Engine) -> bool:
    if engine not in _indexed and SQLITE_TABLE in inspect(engine).get_table_names():
        _indexed.add(engine)
    return engine in _indexed


def _sqlite_phrase(q: str) -> str | None:
    """The FTS5 query for `q` (a quoted phrase), or None when the index cannot serve it."""
    return '"' + q.replace('"', '""') + '"' if len(q) >= MIN_CHARS else None


def _sqlite_matching(phrase: str) -> Select[Any]:
    return (
        select(literal_column("rowid"))
        .select_from(table(SQLITE_TABLE))
        .where(literal_column(SQLITE_TABLE).op("MATCH")(phrase))
    )


def _sqlite(q: str, engine: Engine, matches: int | None) -> ColumnElement[bool]:
    phrase = _sqlite_phrase(q)
    if phrase is None or not _has_sqlite_table(engine):
        return _like(q)
    # Few matches: fetch them by rowid and sort them. Many: walk the listing's own index newest
    # first and keep the rows among the matches (the page fills after a few hundred rows);
    # the unary + keeps SQLite from driving the query by rowid then. Both answer the same.
    if matches is None:
        matches = match_count(q, engine) or 0
    many = matches > WALK_ABOVE
    rowid: ColumnClause[Any] = literal_column(
        "+task_records.rowid" if many else "task_records.rowid"
    )
    return rowid.in_(_sqlite_matching(phrase))


def match_count(q: str, engine: Engine) -> int | None:
    """How many records match `q`, read from the index alone where that is cheap (SQLite's
    FTS table: a fraction of a millisecond for 10,000 matches), else None."""
    phrase = _sqlite_phrase(q)
    if engine.dialect.name != "sqlite" or phrase is None or not _has_sqlite_table(engine):
        return None
    counted = select(func.count()).select_from(_sqlite_matching(phrase).subquery())
    with engine.connect() as conn:
        return int(conn.execute(counted).scalar() or 0)


def mysql_words(q: str) -> list[str]:
    """The words of `q` a FULLTEXT index holds (3+ characters, not a stop word)."""
    words = re.findall(r"\w+", q.lower())
    return [w for w in words if len(w) >= MIN_CHARS and w not in MYSQL_STOPWORDS]


def _mysql(q: str) -> ColumnElement[bool]:
    words = mysql_words(q)
    if not words:
        return _like(q)
    against = " ".join(f"+{w}*" for w in words)
    columns = table_of(TaskRecord).c
    match = mysql.match(columns.error_type, columns.error_message, against=against)
    match = match.in_boolean_mode()
    if words == [q.strip().lower()]:  # one word: a word starting with it holds it
        return match
    return and_(match, _like(q))


def mariadb_per_row(q: str, engine: Engine) -> ColumnElement[bool] | None:
    """On MariaDB, the FULLTEXT condition written for one row at a time (each word starts a
    word: a regular expression; the whole text: LIKE), which a listing can check while it
    walks its own index: a common word fills a page after a few hundred rows, where the
    FULLTEXT plan fetches and sorts every match. None elsewhere, or when `q` has no word the
    index holds (the listing scans then anyway)."""
    if not getattr(engine.dialect, "is_mariadb", False) or not mysql_words(q):
        return None
    starts = [
        or_(
            TaskRecord.error_type.regexp_match(f"(^|[^[:alnum:]_]){w}"),
            TaskRecord.error_message.regexp_match(f"(^|[^[:alnum:]_]){w}"),
        )
        for w in mysql_words(q)
    ]
    return and_(*starts, _like(q))


def error_text_matches(q: str, engine: Engine, matches: int | None = None) -> ColumnElement[bool]:
    """Records whose error type or message holds `q` (any case), through the index of the
    engine's database where there is one; `matches` is `match_count(q, engine)` when the
    caller has it already."""
    dialect = engine.dialect.name
    if dialect == "sqlite":
        return _sqlite(q, engine, matches)
    if dialect == "postgresql":
        return _ilike(q)
    if dialect in ("mysql", "mariadb"):
        return _mysql(q)
    return _like(q)
