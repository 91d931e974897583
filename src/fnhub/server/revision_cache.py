"""Answers that change only when the scripts revision moves, encoded once per revision.

The function and script lists of 1000 scripts take tens of milliseconds to build and encode;
every publish, rollback and delete bumps `<prefix>:scripts:rev` (which the caller re-reads
each second and before each of these answers), so between bumps the same bytes serve every
request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.responses import Response

from fnhub.calling.caller import Caller

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


async def cached_json(
    caller: Caller,
    caches: dict[str, RevisionCache],
    name: str,
    build: Callable[[], Awaitable[bytes]],
) -> Response:
    """The JSON `build()` makes, from the cache `name` in `caches` (one server's) while the
    scripts revision stays where it is."""
    await caller.refresh()
    cache = caches.get(name)
    if cache is None:
        cache = caches[name] = RevisionCache()
    return Response(await cache.body_for(caller.active.revision, build), media_type=JSON)
