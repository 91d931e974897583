"""How the hub runs in the server (see `fnhub.websub.feature`): the delivery service, and the
hub it made for this server's routes to find (`hub_of`)."""

from __future__ import annotations

import asyncio
import weakref

import httpx

from fnhub.server.context import ServerContext
from fnhub.websub.hub import Hub

#: the running hub of each server (a server process has one; tests may run several apps)
_hubs: weakref.WeakKeyDictionary[ServerContext, Hub] = weakref.WeakKeyDictionary()


def hub_of(ctx: ServerContext) -> Hub | None:
    """The hub `service` runs for this server, None while it does not run."""
    return _hubs.get(ctx)


async def service(ctx: ServerContext) -> None:
    """Deliveries, verification queue and lease expiry for the server's lifetime."""
    # loading the CA bundle blocks for 50-300 ms: in a thread, so a starting server listens
    tls = await asyncio.to_thread(httpx.create_ssl_context)
    hub = Hub(ctx.settings, ctx.redis, ctx.db, ctx.keys, ctx.server_id, counts=ctx.counts, tls=tls)
    _hubs[ctx] = hub
    try:
        await hub.run()
    finally:
        if _hubs.get(ctx) is hub:
            del _hubs[ctx]
