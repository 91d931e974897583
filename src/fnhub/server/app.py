"""The ASGI application: API under `/api/v1` (`access.authorize`), endpoints at `/e/`, operations.

`create_app` wires the server's routers and those of the features it is handed
(`fnhub.features.FEATURES` by default); the lifespan opens what a server process shares
(`ServerContext`, and `ServerState` for the server's own routes), starts the caller (reply
reader and cached state) and the features' services (each restarted after an unexpected error,
see `fnhub.supervised`), and closes them in reverse order at shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Sequence

import fastapi.routing
import redis
from fastapi import Depends, FastAPI
from sqlalchemy.exc import SQLAlchemyError

import fnhub
from fnhub import console, tracing
from fnhub.accounts.passwords import warm_up
from fnhub.accounts.signin import SignIn
from fnhub.aio import cancel_and_wait, start_default_executor
from fnhub.calling.caller import Caller
from fnhub.config import Settings
from fnhub.feature import Feature
from fnhub.features import FEATURES
from fnhub.heap import freeze_startup_objects
from fnhub.holders import connection_name, name_connections
from fnhub.keys import Keys
from fnhub.ops_stats import Counts
from fnhub.redis_client import async_redis, sync_redis
from fnhub.scripts.mirror_watch import MirrorWatch
from fnhub.scripts.store import ScriptStore
from fnhub.secret_box import SecretBox, resolve_secret_key
from fnhub.server import errors, json_body, ops
from fnhub.server.access import authorize
from fnhub.server.api import (
    audit,
    cache,
    cluster,
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
from fnhub.server.context import ServerContext
from fnhub.server.endpoints import EndpointRegistry, public_router
from fnhub.server.fast_call import FastCalls
from fnhub.server.feed import Feed
from fnhub.server.middleware import RequestMiddleware
from fnhub.server.overview import Overview
from fnhub.server.prefixed import PrefixedRouter
from fnhub.server.presence import Presence
from fnhub.server.state import ServerState
from fnhub.store.db import Database
from fnhub.supervised import RestartCounter, restart_counter, spawn

log = logging.getLogger(__name__)
API_PREFIX = "/api/v1"


def new_server_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


FLUSH_SECONDS = 1.0


async def flush_counts(ctx: ServerContext) -> None:
    """Add this process's counts to `keys.stats` once a second (kept while Redis is away)."""
    while True:
        await asyncio.sleep(FLUSH_SECONDS)
        try:
            await ctx.counts.flush(ctx.redis, ctx.keys.stats)
        except (redis.RedisError, OSError) as exc:
            log.warning("metrics not flushed (kept for the next try): %s", exc)


def build_routes(app: FastAPI) -> int:
    """Build every route now, as FastAPI would in the first requests; the routes built.

    FastAPI resolves the routes of an included router lazily: the first request whose path
    walks a router analyses the dependencies and parameters of every route in it and builds
    their pydantic validators, on the event loop. Matching `/websub/hub` walks nearly every
    router of the app (about 270 analyses, 0.1 s of CPU on an idle machine); a server restarted
    under load in the cluster bench stalled 1.25 s on it, with its first second of requests
    waiting (issue 23). Walking every route's context (as the OpenAPI document does) builds
    and keeps them all; a FastAPI without `iter_route_contexts` built them when included."""
    contexts = getattr(fastapi.routing, "iter_route_contexts", None)
    if contexts is None:
        return 0
    return sum(1 for _context in contexts(app.routes))


def create_app(
    settings: Settings,
    *,
    features: Sequence[Feature] = FEATURES,
    server_id: str | None = None,
    url: str | None = None,
    exiting: Callable[[], bool] | None = None,
) -> FastAPI:
    """`url`: where this server listens, as it announces itself (`presence`); `exiting`: true
    once the server began shutting down (the console's event streams end then)."""
    parts = [(feature.name, feature.server()) for feature in features]
    counts = Counts()  # the middleware's and the features' counts for /metrics

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # before the port is bound, so that no request waits for them: the default executor's
        # threads, argon2's dummy hash (0.2 s of CPU on four threads, in one of them while the
        # rest starts; made after the port opened, it competed with the first requests) and
        # every route
        await start_default_executor()
        hashing = asyncio.get_running_loop().run_in_executor(None, warm_up)
        build_routes(app)
        db = Database(settings.resolved_db_url())
        client = async_redis(settings)
        sync_client = sync_redis(settings)
        keys = Keys(settings.key_prefix)
        sid = server_id or new_server_id()
        await name_connections(client, connection_name("server", sid))  # `fnhub.holders`
        caller = Caller(settings, client, keys, sid)
        ctx = ServerContext(settings, client, db, keys, sid, caller, counts)
        box = SecretBox(resolve_secret_key(settings))
        console_overview = Overview(ctx, caller)
        state = ServerState(
            ctx=ctx,
            secret_box=box,
            sync_redis=sync_client,
            admin_auth=AdminAuth(db),
            signin=SignIn(db, client, keys, settings),
            scripts=ScriptStore(db, sync_client, keys, settings),
            endpoints=EndpointRegistry(ctx, box),
            overview=console_overview,
            feed=Feed(
                console_overview.snapshot,
                interval=settings.console_feed_seconds,
                heartbeat=settings.console_heartbeat_seconds,
            ),
            metrics=tuple(reader for _name, part in parts for reader in part.metrics),
        )
        if exiting is not None:
            state.exiting = exiting
        app.state.ctx = ctx
        app.state.server = state
        # every loop started from here on counts its restarts into Redis, for /metrics
        restart_counter.set(RestartCounter(keys.loop_restarts, client))
        mirror = MirrorWatch(client, keys, state.scripts, sid)
        with contextlib.suppress(redis.RedisError, OSError, SQLAlchemyError):
            await mirror.check()  # a Redis that lost the scripts: mirrored before the first call
        await caller.start()

        async def reload() -> None:  # an apply moved the project revision
            await caller.refresh()
            await state.endpoints.reload()

        presence = Presence(ctx, reload, url)
        services = [
            spawn(name, functools.partial(service, ctx))
            for name, part in parts
            for service in part.services
        ]
        services.append(spawn("presence", presence.run))
        services.append(spawn("scripts-mirror", mirror.run))
        services.append(spawn("metrics-flush", functools.partial(flush_counts, ctx)))
        freeze_startup_objects()
        await hashing
        try:
            yield
        finally:
            await cancel_and_wait(services)
            with contextlib.suppress(Exception):  # the last second's counts, if Redis answers
                async with asyncio.timeout(1):
                    await counts.flush(client, keys.stats)
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
    app.add_middleware(FastCalls, prefix=API_PREFIX)  # inside RequestMiddleware: added first
    app.add_middleware(
        RequestMiddleware,
        body_max_bytes=settings.body_max_bytes,
        log_requests=settings.access_log,
        counts=counts,
    )
    tracing.configure(settings, "server")
    if tracing.hooks is not None:  # outermost: the span covers the whole answer
        from fnhub.tracing.otel import HttpSpans

        app.add_middleware(HttpSpans, tracer=tracing.hooks.tracer)
    # a path outside /api/v1 is not tried against each of its ~100 routes (`prefixed`)
    api = PrefixedRouter(prefix=API_PREFIX, dependencies=[Depends(authorize)])
    routers = (functions, tasks, dead_letters, scripts, endpoints, connectors, cache, keys, workers)
    for module in (*routers, cluster, drafts, overview):
        api.include_router(module.router)
    for _name, part in parts:
        for router in part.routers:
            api.include_router(router)
    for module in (session, users, audit):
        api.include_router(module.router)
    app.include_router(api)
    app.include_router(session.public_router, prefix=API_PREFIX)  # sign-in: no auth
    app.include_router(public_router)
    app.include_router(ops.router)
    for _name, part in parts:
        for router in part.public_routers:
            app.include_router(router)
    console.mount(app)  # last: its page fallback answers only what no route did
    return app
