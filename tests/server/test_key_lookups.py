"""API-key lookups of a server that remembers nothing yet (just restarted): concurrent requests
with one key share one query, a failed lookup is neither remembered nor shared with later
requests, and a revocation during a lookup is not undone by it. Real SQLite and PostgreSQL; the
queries counted with SQLAlchemy's cursor events; and a burst of HTTP requests at a server just
started."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, event, text
from sqlalchemy.exc import DBAPIError
from tests.conftest import fresh_database
from tests.server.test_first_requests import _serving, _url

from fnhub import audit
from fnhub.config import Settings
from fnhub.server.app import create_app
from fnhub.server.auth import AdminAuth, create_key, revoke_key
from fnhub.server.errors import ApiError
from fnhub.server.models import ApiKey
from fnhub.store.db import Database
from fnhub.store.models import Base, table_of

CONCURRENT = 40


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    urls = fresh_database(request.param, tmp_path)
    database = Database(next(urls))
    tables = [table_of(ApiKey), table_of(audit.AuditEntry)]
    Base.metadata.create_all(database.engine, tables=tables)
    yield database
    database.dispose()
    next(urls, None)


class KeyQueries:
    """Counts the statements that read `api_keys`; `hold()` stops the next one once it ran,
    its rows read, until `release()`."""

    def __init__(self, db: Database | None) -> None:
        self.count = 0
        self.ran = threading.Event()
        self._go: threading.Event | None = None
        self._target: Any = Engine if db is None else db.engine  # None: every engine
        event.listen(self._target, "before_cursor_execute", self._before)  # failed ones too
        event.listen(self._target, "after_cursor_execute", self._after)

    def remove(self) -> None:
        event.remove(self._target, "before_cursor_execute", self._before)
        event.remove(self._target, "after_cursor_execute", self._after)

    @staticmethod
    def _reads_keys(statement: str) -> bool:
        return statement.lstrip().upper().startswith("SELECT") and "api_keys" in statement

    def _before(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if self._reads_keys(statement):
            self.count += 1

    def _after(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        go, self._go = self._go, None
        if go is not None and self._reads_keys(statement):
            self.ran.set()
            go.wait(30)

    def hold(self) -> threading.Event:
        self._go = threading.Event()
        return self._go


async def verify_all(auth: AdminAuth, token: str, n: int = CONCURRENT) -> list[Any]:
    return await asyncio.gather(*(auth.verify(token) for _ in range(n)), return_exceptions=True)


def test_concurrent_requests_with_one_key_make_one_query(db: Database) -> None:
    row, token = create_key(db, "burst", role="developer")
    queries = KeyQueries(db)
    auth = AdminAuth(db)  # a fresh server: nothing remembered

    async def main() -> None:
        keys = await verify_all(auth, token)
        assert {(k.id, k.role.value) for k in keys} == {(row.id, "developer")}
        assert queries.count == 1
        await verify_all(auth, token)  # remembered now
        assert queries.count == 1

    asyncio.run(main())


def test_unknown_key_is_shared_but_never_remembered(db: Database) -> None:
    queries = KeyQueries(db)
    auth = AdminAuth(db)
    token = "fnh_nokey_" + "x" * 32

    async def main() -> None:
        results = await verify_all(auth, token)
        assert all(isinstance(r, ApiError) and r.status == 401 for r in results)
        assert queries.count == 1
        with pytest.raises(ApiError):
            await auth.verify(token)
        assert queries.count == 2

    asyncio.run(main())


def test_a_failed_lookup_is_not_remembered_and_the_next_request_retries(db: Database) -> None:
    row, token = create_key(db, "flaky")
    queries = KeyQueries(db)
    auth = AdminAuth(db)

    def rename(old: str, new: str) -> None:
        with db.engine.begin() as conn:
            conn.execute(text(f"ALTER TABLE {old} RENAME TO {new}"))

    async def main() -> None:
        rename("api_keys", "api_keys_away")  # the lookups fail for real
        try:
            results = await verify_all(auth, token)
        finally:
            rename("api_keys_away", "api_keys")
        assert all(isinstance(r, DBAPIError) for r in results), results
        assert queries.count == 1
        key = await auth.verify(token)  # looked up again, not a shared old failure
        assert key.id == row.id and queries.count == 2
        await auth.verify(token)
        assert queries.count == 2

    asyncio.run(main())


def test_a_revocation_during_a_lookup_is_not_undone_by_it(db: Database) -> None:
    row, token = create_key(db, "revoked")
    queries = KeyQueries(db)
    auth = AdminAuth(db)

    async def main() -> None:
        go = queries.hold()
        first = asyncio.create_task(auth.verify(token))
        assert await asyncio.to_thread(queries.ran.wait, 30)  # it read the key ...
        late = asyncio.create_task(auth.verify(token))  # ... and this one shares its lookup
        await asyncio.sleep(0)
        assert revoke_key(db, row.id)  # then the key is revoked through this server
        auth.forget(row.id)
        with pytest.raises(ApiError):  # asked after it: a lookup of its own
            await auth.verify(token)
        go.set()
        assert (await first).id == (await late).id == row.id  # begun before the revocation
        with pytest.raises(ApiError):  # nothing remembered by the lookup that read it
            await auth.verify(token)

    asyncio.run(main())


def test_an_expired_key_is_refused_by_every_sharer(db: Database) -> None:
    _row, token = create_key(db, "old", expires_at=time.time() - 1)
    queries = KeyQueries(db)
    auth = AdminAuth(db)

    async def main() -> None:
        results = await verify_all(auth, token)
        assert all(isinstance(r, ApiError) and r.status == 401 for r in results)
        assert queries.count == 1

    asyncio.run(main())


def test_a_fresh_servers_burst_with_one_key_makes_one_query(settings: Settings) -> None:
    """The same through HTTP: a server just started (the real app on uvicorn) gets `CONCURRENT`
    requests with one key while the first lookup is held; one query answers them all."""
    db = Database(settings.resolved_db_url())
    db.migrate()
    _row, token = create_key(db, "burst")
    db.dispose()
    queries = KeyQueries(None)  # every engine: the server's is made in its lifespan
    go = queries.hold()
    with _serving(create_app(settings)) as server:

        def release() -> None:  # once every request is in the app, or others queried
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                if len(server.server_state.tasks) >= CONCURRENT or queries.count > 1:
                    time.sleep(0.2)  # for the last ones to reach the lookup
                    break
                time.sleep(0.01)
            go.set()

        async def burst() -> list[int]:
            headers = {"Authorization": f"Bearer {token}"}
            limits = httpx.Limits(max_connections=CONCURRENT)
            async with httpx.AsyncClient(base_url=_url(server), limits=limits, timeout=30) as c:
                releasing = asyncio.create_task(asyncio.to_thread(release))
                answers = await asyncio.gather(
                    *(c.get("/api/v1/functions", headers=headers) for _ in range(CONCURRENT))
                )
                await releasing
            return [a.status_code for a in answers]

        try:
            assert asyncio.run(burst()) == [200] * CONCURRENT
        finally:
            go.set()
            queries.remove()
    assert queries.count == 1
