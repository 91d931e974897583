"""What a server process shares with the areas that plug into it (routers and services).

Areas (cron, websub, subscriptions) are listed in `AREAS`. Each area module may define:

- `router: fastapi.APIRouter` — mounted under `/api/v1` behind admin authentication;
- `public_router: fastapi.APIRouter` — mounted at the root without admin auth (e.g. `/websub/hub`);
- `async def service(ctx: ServerContext) -> None` — runs for the server's lifetime as an asyncio
  task, cancelled at shutdown (beat, hub delivery, subscribers).

An area that is not installed yet is skipped, so the server stays explicit about its wiring.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import redis.asyncio as aredis

from fnhub.config import Settings
from fnhub.keys import Keys
from fnhub.store.db import Database

AREAS = ("fnhub.cron.area", "fnhub.websub.area", "fnhub.subscriptions.area")


@dataclass
class ServerContext:
    settings: Settings
    redis: aredis.Redis  # asyncio client
    db: Database  # sync SQLAlchemy: call it through `asyncio.to_thread`
    keys: Keys
    server_id: str  # unique per server process (leases, reply streams)
    extras: dict[str, Any] = field(default_factory=dict)


def load_areas() -> list[ModuleType]:
    modules = []
    for name in AREAS:
        try:
            modules.append(importlib.import_module(name))
        except ModuleNotFoundError as exc:
            if exc.name is None or not name.startswith(exc.name):
                raise
    return modules
