"""The ASGI application: API under `/api/v1` (`access.authorize`), endpoints at `/e/`, operations.

`create_app` wires routers (the server's and the areas' from `context.load_areas()`); the
lifespan opens what a server process shares (`ServerContext`), starts the caller (reply reader
and cached state) and the areas' services (each restarted after an unexpected error, see
`fnhub.supervised`), and closes them in reverse order at shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator

from fastapi import APIRouter, Depends, FastAPI

import fnhub
from fnhub import console
from fnhub.accounts.passwords import warm_up
from fnhub.accounts.signin import SignIn
from fnhub.aio import cancel_and_wait
from fnhub.config import Settings
from fnhub.heap import freeze_startup_objects
from fnhub.keys import Keys
from fnhub.redis_client import async_redis, sync_redis
from fnhub.scripts.store import ScriptStore
from fnhub.secret_box import SecretBox, resolve_secret_key
from fnhub.server import errors, json_body, ops
from fnhub.server.access import authorize
from fnhub.server.api import (
    audit,
    cache,
    connectors,
    dead_letters,
    drafts,
    endpoints,
    functions,
    keys,
    overview,
    scripts,
    session,
    tasks,
    users,
    workers,
)
from fnhub.server.auth import AdminAuth
from fnhub.server.caller import Caller
from fnhub.server.context import ServerContext, load_areas
from fnhub.server.endpoints import EndpointRegistry, public_router
from fnhub.server.middleware import RequestMiddleware
from fnhub.server.presence import Presence
from fnhub.store.db import Database
from fnhub.supervised import RestartCounter, restart_counter, spawn

log = logging.getLogger(__name__)
API_PREFIX = "/api/v1"


def new_server_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def create_app(
    settings: Settings, *, server_id: str | None = None, url: str | None = None
) -> FastAPI:
    """`url`: where this server listens, as it announces itself (`presence`)."""
    areas = load_areas()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = Database(settings.resolved_db_url())
        client = async_redis(settings)
        sync_client = sync_redis(settings)
        ctx = ServerContext(
            settings=settings,
            redis=client,
            db=db,
            keys=Keys(settings.key_prefix),
            server_id=server_id or new_server_id(),
        )
        box = SecretBox(resolve_secret_key(settings))
        caller = Caller(ctx)
        ctx.extras["caller"] = caller
        app.state.ctx = ctx
        app.state.caller = caller
        app.state.secret_box = box
        app.state.sync_redis = sync_client  # for code shared with the CLI (in threads)
        app.state.admin_auth = AdminAuth(db)
        app.state.signin = SignIn(db, client, ctx.keys, settings)
        await asyncio.to_thread(warm_up)
        app.state.scripts = ScriptStore(db, sync_client, ctx.keys)
        app.state.endpoints = EndpointRegistry(ctx, box)
        # every loop started from here on counts its restarts into Redis, for /metrics
        restart_counter.set(RestartCounter(ctx.keys.loop_restarts, client))
        await caller.start()

        async def reload() -> None:  # an apply moved the project revision
            await caller.refresh()
            await app.state.endpoints.reload()

        presence = Presence(ctx, reload, url)
        services = [
            spawn(m.__name__.split(".")[1], functools.partial(m.service, ctx))
            for m in areas
            if hasattr(m, "service")
        ]
        services.append(spawn("presence", presence.run))
        freeze_startup_objects()
        try:
            yield
        finally:
            await cancel_and_wait(services)
            await presence.leave()
            await caller.stop()
            await client.aclose()
            sync_client.close()
            db.dispose()

    app = FastAPI(
        title="fnhub",
        version=fnhub.__version__,
        description="Call Python functions through a durable queue; publish them as endpoints.",
        lifespan=lifespan,
    )
    errors.install(app)
    json_body.install(app)  # wraps the validation handler errors.install set
    app.add_middleware(
        RequestMiddleware, body_max_bytes=settings.body_max_bytes, log_requests=settings.access_log
    )
    api = APIRouter(prefix=API_PREFIX, dependencies=[Depends(authorize)])
    routers = (functions, tasks, dead_letters, scripts, endpoints, connectors, cache, keys, workers)
    for module in (*routers, drafts, overview):
        api.include_router(module.router)
    for area in areas:
        if hasattr(area, "router"):
            api.include_router(area.router)
    for module in (session, users, audit):
        api.include_router(module.router)
    app.include_router(api)
    app.include_router(session.public_router, prefix=API_PREFIX)  # sign-in: no auth
    app.include_router(public_router)
    app.include_router(ops.router)
    for area in areas:
        if hasattr(area, "public_router"):
            app.include_router(area.public_router)
    console.mount(app)  # last: its page fallback answers only what no route did
    return app
