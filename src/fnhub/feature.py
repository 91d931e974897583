"""What a feature (cron, WebSub, subscriptions...) hands to the whole: one typed object.

A `Feature` lists what it adds to each part of fnhub, as objects its module imported:
`fnhub.yaml` sections `apply_project` hands over, model modules Alembic sees, command groups the
CLI adds, and its server side (`ServerParts`: routers the server mounts, services it runs for
its lifetime). The list of features is `fnhub.features.FEATURES`, ordinary imports: a misspelt
or missing feature fails at import, and nothing is discovered at run time (the model is
Starlette's `Starlette(routes=..., middleware=..., lifespan=...)`).

The server side comes from a function of the feature's module (`Feature.server`) that imports
it: FastAPI and the routes cost a command-line call 0.4 s it has no use for, so only
`create_app` calls it, for every feature, before the server starts.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import typer
    from fastapi import APIRouter

    from fnhub.project import SectionApplier
    from fnhub.server.context import ServerContext
    from fnhub.server.metric_families import MetricsReader

#: runs for the server's lifetime as an asyncio task, cancelled at shutdown
Service = Callable[["ServerContext"], Coroutine[Any, Any, None]]


@dataclass(frozen=True)
class CliGroup:
    """`fnhub <name> ...`: a group of commands."""

    name: str
    app: typer.Typer


@dataclass(frozen=True)
class CliCommand:
    """`fnhub <name>`: one top-level command."""

    name: str
    command: Callable[..., Any]


@dataclass(frozen=True)
class ServerParts:
    """What a feature adds to the HTTP server."""

    #: mounted under `/api/v1` behind authentication (`server.access.authorize`)
    routers: tuple[APIRouter, ...] = ()
    #: mounted at the root without authentication (e.g. `/websub/hub`)
    public_routers: tuple[APIRouter, ...] = ()
    services: tuple[Service, ...] = ()
    #: its series in `/metrics` (`fnhub.server.metric_families`), bounded label sets only
    metrics: tuple[MetricsReader, ...] = ()


def no_server_parts() -> ServerParts:
    return ServerParts()


@dataclass(frozen=True)
class Feature:
    name: str
    #: imports and returns the feature's server side (only a server calls it)
    server: Callable[[], ServerParts] = no_server_parts
    #: `fnhub.yaml` section name → its applier; a section follows those listed before it
    sections: tuple[tuple[str, SectionApplier], ...] = ()
    #: modules declaring tables on `fnhub.store.models.Base`, for Alembic
    models: tuple[ModuleType, ...] = ()
    cli: tuple[CliGroup | CliCommand, ...] = ()
