"""What a server process shares with its features' routers and services (`fnhub.feature`).

The app factory makes one `ServerContext` in its lifespan; routes get it through the `Ctx`
dependency (typed, checked), services as their argument.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

import redis.asyncio as aredis
from fastapi import Depends, Request

from fnhub.calling.caller import Caller
from fnhub.config import Settings
from fnhub.keys import Keys
from fnhub.ops_stats import Counts
from fnhub.store.db import Database


@dataclass(eq=False)  # compared and hashed by identity: features may key their state by it
class ServerContext:
    settings: Settings
    redis: aredis.Redis  # asyncio client
    db: Database  # sync SQLAlchemy: call it through `asyncio.to_thread`
    keys: Keys
    server_id: str  # unique per server process (leases, reply streams)
    caller: Caller  # calls functions; its reply stream is named by `server_id`
    #: counted for `/metrics` in memory, added to `keys.stats` once a second (`fnhub.ops_stats`)
    counts: Counts = field(default_factory=Counts)
    #: what this process holds, by name, as its presence entry says it (`server.presence`):
    #: features add theirs while running (subscribed subscriptions, WebSub delivery claims)
    facts: dict[str, Callable[[], Any]] = field(default_factory=dict)


def context_of(request: Request) -> ServerContext:
    """The context of the server answering `request` (set by the app factory's lifespan)."""
    ctx = getattr(request.app.state, "ctx", None)
    if not isinstance(ctx, ServerContext):
        raise RuntimeError("no ServerContext on the app: it is set by create_app's lifespan")
    return ctx


def caller_of(request: Request) -> Caller:
    return context_of(request).caller


Ctx = Annotated[ServerContext, Depends(context_of)]
CallerDep = Annotated[Caller, Depends(caller_of)]
