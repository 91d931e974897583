"""How the hub runs in the server (see `fnhub.websub.feature`): the delivery service, and the
hub it made for this server's routes to find (`hub_of`)."""

from __future__ import annotations

import asyncio
import contextlib
import weakref

import httpx

from fnhub.server.context import ServerContext
from fnhub.websub.hub import Hub

#: the running hub of each server (a server process has one; tests may run several apps)
_hubs: weakref.WeakKeyDictionary[ServerContext, Hub] = weakref.WeakKeyDictionary()
#: set once the server's hub is made (or failed to start): requests wait for it meanwhile
_made: weakref.WeakKeyDictionary[ServerContext, asyncio.Event] = weakref.WeakKeyDictionary()

#: how long a request that came while the hub was being made waits for it
MAKING_WAIT_SECONDS = 10.0


async def hub_of(ctx: ServerContext) -> Hub | None:
    """The hub `service` runs for this server; None when it does not run. A request that comes
    while the hub is being made (its TLS context loads in a thread) waits for it."""
    hub = _hubs.get(ctx)
    if hub is None and (made := _made.get(ctx)) is not None and not made.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(made.wait(), MAKING_WAIT_SECONDS)
        hub = _hubs.get(ctx)
    return hub


async def service(ctx: ServerContext) -> None:
    """Deliveries, verification queue and lease expiry for the server's lifetime."""
    made = _made[ctx] = asyncio.Event()
    try:
        # loading the CA bundle blocks for 50-300 ms: in a thread, so a starting server listens
        tls = await asyncio.to_thread(httpx.create_ssl_context)
        hub = Hub(
            ctx.settings, ctx.redis, ctx.db, ctx.keys, ctx.server_id, counts=ctx.counts, tls=tls
        )
        _hubs[ctx] = hub
    finally:
        made.set()
    ctx.facts["websub_claims"] = lambda: len(hub.deliverers)  # for its presence entry
    try:
        await hub.run()
    finally:
        ctx.facts.pop("websub_claims", None)
        if _hubs.get(ctx) is hub:
            del _hubs[ctx]
