"""A server context for one `single` subscription's runner in a test: fnhub's Redis at
`redis_url` (a private redis-server the test freezes or restarts), SQLite, no workers."""

from __future__ import annotations

from pathlib import Path

import redis.asyncio as aredis

from fnhub.calling.caller import Caller
from fnhub.config import Settings
from fnhub.keys import Keys
from fnhub.server.context import ServerContext
from fnhub.store.db import Database


def holder_context(tmp_path: Path, redis_url: str, prefix: str) -> ServerContext:
    settings = Settings(
        project_dir=tmp_path,
        data_dir=tmp_path / ".fnhub",
        redis_url=redis_url,
        db_url=f"sqlite:///{tmp_path / 'f.db'}",
        key_prefix=prefix,
    )
    client = aredis.Redis.from_url(redis_url, socket_connect_timeout=0.5)
    return ServerContext(
        settings=settings,
        redis=client,
        db=Database(settings.resolved_db_url()),
        keys=Keys(prefix),
        server_id="holder",
        caller=Caller(settings, client, Keys(prefix), "holder"),  # never started: no calls
    )
