"""Answers that change only when the scripts revision moves, encoded once per revision.

The function and script lists of 1000 scripts take tens of milliseconds to build and encode;
every publish, rollback and delete bumps `<prefix>:scripts:rev` (which the caller re-reads
each second and before each of these answers), so between bumps the same bytes serve every
request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI
from starlette.responses import Response

JSON = "application/json"


class RevisionCache:
    def __init__(self) -> None:
        self.revision: int | None = None
        self.body = b""

    async def body_for(self, revision: int, build: Callable[[], Awaitable[bytes]]) -> bytes:
        if revision != self.revision:
            self.body = await build()
            self.revision = revision
        return self.body


async def cached_json(app: FastAPI, name: str, build: Callable[[], Awaitable[bytes]]) -> Response:
    """The JSON `build()` makes, from the cache `name` on the app while the scripts revision
    stays where it is."""
    caller = app.state.caller
    await caller.refresh()
    cache = getattr(app.state, name, None)
    if cache is None:
        cache = RevisionCache()
        setattr(app.state, name, cache)
    return Response(await cache.body_for(caller.active.revision, build), media_type=JSON)
