"""What a feature (cron, WebSub, subscriptions...) hands to the whole: one typed object.

A `Feature` lists what it adds to each part of fnhub, by name ("module:attribute"), imported
by the part that uses it: `fnhub.yaml` sections and their appliers (`apply_project`), model
modules (Alembic, `store.all_models`), command groups (the CLI, `fnhub.cli_lazy`, so that
`fnhub --help` imports none of them), and its server side (`ServerParts`: routers the server
mounts, services it runs for its lifetime). A test resolves every name. The list of features
is `fnhub.features.FEATURES`, ordinary imports: a misspelt or missing feature fails at
import, and nothing is discovered at run time (the model is Starlette's
`Starlette(routes=..., middleware=..., lifespan=...)`).

The server side comes from a function of the feature's module (`Feature.server`) that imports
it: FastAPI and the routes cost a command-line call 0.4 s it has no use for, so only
`create_app` calls it, for every feature, before the server starts.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import APIRouter

    from fnhub.project import SectionApplier
    from fnhub.server.context import ServerContext
    from fnhub.server.metric_families import MetricsReader

#: runs for the server's lifetime as an asyncio task, cancelled at shutdown
Service = Callable[["ServerContext"], Coroutine[Any, Any, None]]


@dataclass(frozen=True)
class CliGroup:
    """`fnhub <name> ...`: a group of commands, the Typer at `target` ("module:attribute"),
    imported only when one of them runs (`fnhub.cli_lazy`); `help` is its line in `fnhub --help`."""

    name: str
    target: str
    help: str


@dataclass(frozen=True)
class CliCommand:
    """`fnhub <name>`: one top-level command, the function at `target`, imported the same way."""

    name: str
    target: str
    help: str


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
    #: `fnhub.yaml` section name → its applier ("module:function", a `SectionApplier`); a
    #: section follows those listed before it
    sections: tuple[tuple[str, str], ...] = ()
    #: names of the modules declaring tables on `fnhub.store.models.Base`, for Alembic
    models: tuple[str, ...] = ()
    cli: tuple[CliGroup | CliCommand, ...] = ()

    def appliers(self) -> dict[str, SectionApplier]:
        """Its sections' appliers, imported."""
        return {name: resolve(target) for name, target in self.sections}


def resolve(target: str) -> Any:
    """The object a "module:attribute" name stands for, its module imported."""
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)
