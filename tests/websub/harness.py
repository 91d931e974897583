"""Real servers for hub tests: the real fnhub server app under uvicorn, and subscriber callbacks
that record what the hub sends. Used by the tests, the kill/restart subprocess and the benchmark.

`prepare_server(settings)` migrates the database and creates an admin API key (the management API
under `/api/v1` needs one; `/websub/hub` is public); `server_app(settings)` is
`fnhub.server.app.create_app`, so hub tests run against every area and middleware of a server.
"""

from __future__ import annotations

import asyncio
import io
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import redis as sync_redis
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, Response

from fnhub import runtime
from fnhub.config import Settings
from fnhub.server.app import create_app
from fnhub.server.auth import create_key
from fnhub.store.db import Database


def bound_socket() -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def prepare_server(settings: Settings) -> str:
    """Migrate the schema (as `fnhub server` does) and return a new admin API token."""
    db = Database(settings.resolved_db_url())
    try:
        db.migrate()
        _row, token = create_key(db, "websub-tests")
    finally:
        db.dispose()
    return token


def server_app(settings: Settings) -> FastAPI:
    return create_app(settings)


class Served:
    """A uvicorn server on an already bound random port, in the current event loop."""

    def __init__(self, app: FastAPI, sock: socket.socket | None = None) -> None:
        self.sock = sock or bound_socket()
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app, log_level="warning", lifespan="on", timeout_graceful_shutdown=2
        )
        self.server = uvicorn.Server(config)
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> Served:
        self.task = asyncio.create_task(self.server.serve(sockets=[self.sock]))
        while not self.server.started:
            if self.task.done():
                self.task.result()
            await asyncio.sleep(0.01)
        return self

    async def stop(self, timeout: float = 30.0) -> None:
        self.server.should_exit = True
        if self.task is not None:
            done, _ = await asyncio.wait({self.task}, timeout=timeout)
            if not done:  # say what is stuck instead of hitting pytest's timeout blind
                stacks = io.StringIO()
                for t in asyncio.all_tasks():
                    if not t.done():
                        t.print_stack(limit=6, file=stacks)
                self.task.cancel()
                raise AssertionError(
                    f"server on {self.url} did not stop in {timeout}s:\n{stacks.getvalue()}"
                )
            self.task.result()
        self.sock.close()


@dataclass
class Notice:
    body: bytes
    headers: dict[str, str]
    at: float
    query: str


@dataclass
class Callback:
    """What one callback URL answers, and what it received."""

    confirm: bool = True  # echo the challenge (else 404)
    echo: str = "{}"  # what a confirming answer's body is, the challenge in place of {}
    statuses: list[int] = field(default_factory=list)  # answers to notifications, then 200
    down: bool = False  # answer every notification with 503
    delay: float = 0.0
    #: run when a subscribe verification comes, before the answer (the first such one only)
    on_verify: Callable[[], Awaitable[None]] | None = None
    verifications: list[dict[str, str]] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)
    attempts: int = 0
    in_flight: int = 0  # notification requests being answered now
    arrivals: list[int] = field(default_factory=list)  # in_flight as each request arrived
    event: asyncio.Event = field(default_factory=asyncio.Event)

    def bodies(self) -> list[bytes]:
        return [n.body for n in self.notices]


class Subscribers:
    """A subscriber server; `/cb/<name>` routes to `callbacks[name]` (created on first use)."""

    def __init__(self) -> None:
        self.callbacks: dict[str, Callback] = {}
        app = FastAPI()

        @app.get("/cb/{name}")
        async def verify(name: str, request: Request) -> Response:
            cb = self.cb(name)
            params = dict(request.query_params)
            cb.verifications.append(params)
            cb.event.set()
            if cb.on_verify is not None and params.get("hub.mode") == "subscribe":
                hook, cb.on_verify = cb.on_verify, None
                await hook()
            if params.get("hub.mode") == "denied" or not cb.confirm:
                return Response(status_code=404 if not cb.confirm else 200)
            return PlainTextResponse(cb.echo.format(params.get("hub.challenge", "")))

        @app.post("/cb/{name}")
        async def notify(name: str, request: Request) -> Response:
            cb = self.cb(name)
            cb.attempts += 1
            cb.in_flight += 1
            cb.arrivals.append(cb.in_flight)
            try:
                body = await request.body()
                if cb.delay:
                    await asyncio.sleep(cb.delay)
            finally:
                cb.in_flight -= 1
            status = cb.statuses.pop(0) if cb.statuses else (503 if cb.down else 200)
            if 200 <= status < 300:
                cb.notices.append(
                    Notice(body, dict(request.headers), time.time(), request.url.query)
                )
                cb.event.set()
            return Response(status_code=status)

        @app.get("/topic/{name}")
        async def topic(name: str) -> Response:
            self.topic_fetches.append(name)
            content, ctype = self.topics.get(name, (b"", "text/plain"))
            return Response(content, headers={"content-type": ctype})  # exactly as given

        self.topics: dict[str, tuple[bytes, str]] = {}
        self.topic_fetches: list[str] = []  # names of the topics the hub fetched, in order
        self.app = app
        self.served = Served(app)
        self.url = self.served.url

    def cb(self, name: str) -> Callback:
        return self.callbacks.setdefault(name, Callback())

    def callback_url(self, name: str) -> str:
        return f"{self.url}/cb/{name}"


async def eventually(predicate: Any, timeout: float = 10.0, interval: float = 0.02) -> Any:
    """Poll an (async or sync) predicate until truthy; fail with the timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


def script_publish(settings: Settings, topic: str, contents: list[str]) -> list[str]:
    """Publish as a script does (`fnhub.websub.publish`, straight to Redis); returns positions."""
    client = sync_redis.Redis.from_url(settings.redis_url)
    runtime.init(settings, client)
    try:
        import fnhub.websub

        return [fnhub.websub.publish(topic, c) for c in contents]
    finally:
        runtime.init(None, None)  # type: ignore[arg-type]
        client.close()
