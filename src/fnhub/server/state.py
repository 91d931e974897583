"""What the HTTP server itself holds beside the `ServerContext` it shares with features: the
objects its own routes use (sign-in, API keys, scripts, endpoints, the console's overview).

Made once in the app factory's lifespan; routes get it through the `State` dependency.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated

import redis
from fastapi import Depends, Request

from fnhub.accounts.signin import SignIn
from fnhub.scripts.store import ScriptStore
from fnhub.secret_box import SecretBox
from fnhub.server.auth import AdminAuth
from fnhub.server.context import ServerContext
from fnhub.server.feed import Feed
from fnhub.server.metric_families import MetricsReader
from fnhub.server.overview import Overview
from fnhub.server.revision_cache import RevisionCache

if TYPE_CHECKING:  # its routes read this state
    from fnhub.server.endpoints import EndpointRegistry


def _never() -> bool:
    return False


@dataclass(eq=False)
class ServerState:
    ctx: ServerContext
    secret_box: SecretBox
    sync_redis: redis.Redis  # for code shared with the CLI (run in threads)
    admin_auth: AdminAuth
    signin: SignIn
    scripts: ScriptStore
    endpoints: EndpointRegistry
    overview: Overview
    feed: Feed  # the console's event stream: one producer per server process
    #: true once the server began shutting down (never-ending responses end then)
    exiting: Callable[[], bool] = _never
    #: answers encoded once per scripts revision, by name (`revision_cache.cached_json`)
    revision_caches: dict[str, RevisionCache] = field(default_factory=dict)
    #: the features' parts of `/metrics`
    metrics: tuple[MetricsReader, ...] = ()


def state_of(request: Request) -> ServerState:
    """The state of the server answering `request` (set by the app factory's lifespan)."""
    state = getattr(request.app.state, "server", None)
    if not isinstance(state, ServerState):
        raise RuntimeError("no ServerState on the app: it is set by create_app's lifespan")
    return state


State = Annotated[ServerState, Depends(state_of)]
