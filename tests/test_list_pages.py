"""`server.api.paging`: a keyset walk over a named listing returns every row once, in order,
with ties on the name broken by id, and filters names by text (LIKE wildcards taken literally),
on every database."""

from __future__ import annotations

import pytest
from tests import test_records

from fnhub.server.api.paging import PageRequest, fetch_page
from fnhub.server.errors import ApiError
from fnhub.server.models import ApiKey
from fnhub.store.db import Database

database = test_records.database  # the fixture: each database, migrated


def _walk(db: Database, limit: int, name: str | None = None) -> list[tuple[str, str]]:
    seen, cursor = [], None
    while True:
        request = PageRequest(name=name, cursor=cursor, offset=0, limit=limit, count=None)
        rows, meta = fetch_page(db, [ApiKey.name, ApiKey.id], request)
        assert (meta["total"] is None) == (cursor is not None)
        seen += [(r.name, r.id) for r in rows]
        cursor = meta["next_cursor"]
        if cursor is None:
            return seen


def test_a_keyset_walk_returns_every_row_once_on_every_database(database):
    names = ["ci", "ci", "ci", "deploy_bot", "deploy-bot", "Grafana", "50% sampler", "b"]
    with database.session() as session, session.begin():
        for i, name in enumerate(names):
            session.add(ApiKey(id=f"k{(i * 7) % 10:02d}", name=name, token_hash=f"h{i}"))
    everything = sorted((name, f"k{(i * 7) % 10:02d}") for i, name in enumerate(names))
    for limit in (1, 2, 3, 100):
        walked = _walk(database, limit)
        # each row once, whatever order the database's collation gives the names
        assert sorted(walked) == everything and len(walked) == len(names)
        assert walked == _walk(database, 100)  # the same order at every page size
    assert [n for n, _ in _walk(database, 2, "DEPLOY_")] == ["deploy_bot"]  # `_` literal
    assert [n for n, _ in _walk(database, 2, "50%")] == ["50% sampler"]
    assert [n for n, _ in _walk(database, 2, "grafana")] == ["Grafana"]  # any case
    for cursor in ("e30", "W3t9LCAiayJd", "bm90IGpzb24", "é"):  # {}, [{}, "k"], not json, é
        with pytest.raises(ApiError):
            fetch_page(database, [ApiKey.name, ApiKey.id], PageRequest(None, cursor, 0, 2, None))
