"""A started server answers its first requests without building its routes first.

FastAPI (0.16x) resolves the routes of an included router lazily: the first request that
walks a router analyses the dependencies and parameters of every route in it and builds their
pydantic validators, on the event loop. Matching `/websub/hub` walks nearly every router of
the app, about 270 route analyses: 0.1 s of CPU on an idle machine, but in the cluster bench
(issue 23) a server restarted after `kill -9` under load stalled 1.25 s in its first second,
and every request it had accepted waited (p50 0.9 s against 0.24 s on the other server).

So the lifespan builds them before the server binds its port. The test counts FastAPI's
dependency analyses (`get_dependant`, as its router calls it): some during the start-up, none
in the first requests, whichever routes they hit (an unmatched path walks every router).
Likewise the threads of the loop's default executor and argon2's dummy hash: made before the
port opens."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import fastapi.dependencies.utils
import fastapi.routing
import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from tests.conftest import free_port

from fnhub.accounts import passwords
from fnhub.aio import default_threads
from fnhub.config import Settings
from fnhub.server.app import create_app
from fnhub.server.auth import create_key
from fnhub.store.db import Database


class _Analyses:
    """Counts FastAPI's route analyses; `phase` names where they happened."""

    def __init__(self) -> None:
        self.phase = "start-up"
        self.counts: dict[str, int] = {}
        self.original = fastapi.dependencies.utils.get_dependant  # what the router calls

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.counts[self.phase] = self.counts.get(self.phase, 0) + 1
        return self.original(*args, **kwargs)


@pytest.fixture
def analyses(monkeypatch: pytest.MonkeyPatch) -> _Analyses:
    spy = _Analyses()
    monkeypatch.setattr(fastapi.routing, "get_dependant", spy)
    return spy


@contextlib.contextmanager
def _serving(app: FastAPI, kind: type[uvicorn.Server] = uvicorn.Server) -> Iterator[uvicorn.Server]:
    """`app` on uvicorn in a thread, from when it serves (its lifespan started, port bound)."""
    port = free_port()
    server = kind(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
        time.sleep(0.05)
    try:
        yield server
    finally:
        server.should_exit = True
        thread.join(20)


def _url(server: uvicorn.Server) -> str:
    return f"http://{server.config.host}:{server.config.port}"


def test_the_first_requests_find_every_route_built(settings: Settings, analyses: _Analyses) -> None:
    db = Database(settings.resolved_db_url())
    db.migrate()
    _row, token = create_key(db, "first-requests")
    db.dispose()
    app = create_app(settings)
    analyses.counts.clear()  # what create_app itself analysed is not the point
    with _serving(app) as server:
        analyses.phase = "requests"
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=_url(server), timeout=10) as http:
            answers = [
                http.post("/websub/hub", data={"hub.mode": "publish"}),
                http.post("/api/v1/functions/nope.nothing/tasks", json={}, headers=headers),
                http.get("/api/v1/no/such/route", headers=headers),
                http.get("/no/such/page"),
                http.get("/readyz"),  # 503 here: no worker runs
            ]
        assert all(a.status_code != 500 for a in answers), [a.text for a in answers]
    assert analyses.counts.get("start-up", 0) > 100  # the routes were built while starting
    assert analyses.counts.get("requests", 0) == 0  # and none while answering


def test_the_default_executors_threads_run_before_the_port_opens(settings: Settings) -> None:
    """`asyncio.to_thread` (API key and session lookups, most SQL) finds its threads started:
    a request never waits on the event loop for a new thread to be scheduled."""
    Database(settings.resolved_db_url()).migrate()
    before = set(threading.enumerate())
    with _serving(create_app(settings)):
        started = [t for t in threading.enumerate() if t not in before]
        executor = [t for t in started if t.name.startswith("fnhub-io")]
        assert len(executor) == default_threads(), [t.name for t in started]
        assert all(t.is_alive() for t in executor)


class _BindWatch(uvicorn.Server):
    """Notes whether argon2's dummy hash exists once the app's lifespan started, when uvicorn
    goes on to open the port (`Server.startup`: the lifespan, then the listening sockets)."""

    hash_ready: bool | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        lifespan_startup = self.lifespan.startup

        async def then_note() -> None:
            await lifespan_startup()
            self.hash_ready = passwords._dummy_hash is not None

        self.lifespan.startup = then_note
        await super().startup(sockets)


def test_the_dummy_password_hash_is_made_before_the_port_opens(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """argon2 (0.2 s of CPU on four threads) made after the port opened competed with the
    first requests; made while the lifespan starts the rest, it is done before."""
    monkeypatch.setattr(passwords, "_dummy_hash", None)  # as in a process that just started
    Database(settings.resolved_db_url()).migrate()
    with _serving(create_app(settings), _BindWatch) as server:
        assert isinstance(server, _BindWatch)
        assert server.hash_ready is True
