"""How the hub plugs into the server (see `fnhub.server.context`): the public `/websub/hub`
router, the management router, and the delivery service."""

from __future__ import annotations

import contextlib

from fnhub.server.context import ServerContext
from fnhub.websub.admin import router
from fnhub.websub.api import public_router
from fnhub.websub.hub import Hub

__all__ = ["public_router", "router", "service"]


async def service(ctx: ServerContext) -> None:
    """Deliveries, verification queue and lease expiry for the server's lifetime."""
    hub = Hub(ctx.settings, ctx.redis, ctx.db, ctx.keys, ctx.server_id)
    ctx.extras["websub"] = hub
    try:
        await hub.run()
    finally:
        with contextlib.suppress(KeyError):
            del ctx.extras["websub"]
