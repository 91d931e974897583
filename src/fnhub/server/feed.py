"""The console's live feed: one producer per server process, fanned out to every open page.

While at least one client listens, the producer computes a snapshot every `interval` seconds,
encodes it once as a Server-Sent Event and hands the same bytes to every client; with nobody
listening it stops. A client that falls behind gets the newest snapshot, never a backlog. Each
stream also carries a comment line every `heartbeat` seconds (so proxies and browsers keep an
idle-looking connection open) and ends when the server begins to shut down.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

log = logging.getLogger(__name__)

#: how soon a stream notices that the server shuts down
EXIT_POLL_SECONDS = 0.5
#: what EventSource waits before reconnecting (ms), sent as the stream's first line
RECONNECT_MS = 2000
ERROR_LOG_EVERY_SECONDS = 60.0


def event(name: str, data: dict[str, Any]) -> bytes:
    """One SSE event; compact JSON holds no newline, so it fits one `data:` line."""
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


class _Client:
    """What one open stream has not sent yet: only the newest message."""

    __slots__ = ("message", "ready")

    def __init__(self) -> None:
        self.message = b""
        self.ready = asyncio.Event()

    def offer(self, message: bytes) -> None:
        self.message = message
        self.ready.set()


class Feed:
    def __init__(
        self,
        produce: Callable[[], Awaitable[dict[str, Any]]],
        *,
        interval: float = 1.0,
        heartbeat: float = 15.0,
    ) -> None:
        self.produce = produce
        self.interval = interval
        self.heartbeat = heartbeat
        self.clients: set[_Client] = set()
        self.producer_runs = 0  # producers started in this process (one at a time)
        self.tick = 0  # snapshots produced in this process
        self.latest = b""
        self._producer: asyncio.Task[None] | None = None
        self._error_logged_at = -ERROR_LOG_EVERY_SECONDS

    def state(self) -> dict[str, Any]:
        """How the feed runs in this process (shown with every snapshot)."""
        return {
            "tick": self.tick,
            "producer_runs": self.producer_runs,
            "clients": len(self.clients),
            "running": self._producer is not None,
        }

    def _join(self) -> _Client:
        client = _Client()
        if self.latest:
            client.offer(self.latest)  # a page opening while others listen paints at once
        self.clients.add(client)
        if self._producer is None:
            self.producer_runs += 1
            self._producer = asyncio.create_task(self._produce(), name="fnhub-console-feed")
        return client

    def _leave(self, client: _Client) -> None:
        self.clients.discard(client)  # the producer stops at its next tick if none is left

    async def _produce(self) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time()
        try:
            while self.clients:
                await self._tick()
                due = max(due + self.interval, loop.time())
                await asyncio.sleep(due - loop.time())
        finally:
            # no await between the last look at `clients` and this: a client that joins
            # later finds no producer and starts one
            self._producer = None
            self.latest = b""

    async def _tick(self) -> None:
        try:
            snapshot = await self.produce()
        except Exception as exc:  # Redis or the database away: try again next tick
            if time.monotonic() - self._error_logged_at >= ERROR_LOG_EVERY_SECONDS:
                self._error_logged_at = time.monotonic()
                log.warning("console feed: cannot compute a snapshot: %r", exc)
            return
        self.tick += 1
        self.latest = event("snapshot", {**snapshot, "feed": self.state()})
        for client in self.clients:
            client.offer(self.latest)

    async def stream(self, exiting: Callable[[], bool]) -> AsyncIterator[bytes]:
        """One client's events until it goes away or `exiting()` turns true."""
        loop = asyncio.get_running_loop()
        client = self._join()
        try:
            yield f"retry: {RECONNECT_MS}\n\n".encode()
            pinged = loop.time()
            while not exiting():
                wait = min(EXIT_POLL_SECONDS, pinged + self.heartbeat - loop.time())
                if not client.ready.is_set() and wait > 0:
                    try:
                        await asyncio.wait_for(client.ready.wait(), wait)
                    except TimeoutError:
                        pass
                if client.ready.is_set():
                    client.ready.clear()
                    yield client.message
                if loop.time() - pinged >= self.heartbeat:
                    pinged = loop.time()
                    yield b": ping\n\n"
        finally:
            self._leave(client)


class EventStreamResponse(StreamingResponse):
    """`text/event-stream`, never cached or buffered by a proxy, and the stream's generator
    closed however the response ends (so its client leaves the feed at once)."""

    media_type = "text/event-stream"

    def __init__(self, content: AsyncIterator[bytes]) -> None:
        super().__init__(
            content,
            headers={"Cache-Control": "no-cache, no-transform", "X-Accel-Buffering": "no"},
        )
        self._events = content

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            aclose = getattr(self._events, "aclose", None)
            if aclose is not None:
                await aclose()
