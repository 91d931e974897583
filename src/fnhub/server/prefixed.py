"""An `APIRouter` that answers "no match" at once for a path outside its prefix.

FastAPI matches an included router by trying each of its routes in turn (and each nested
router's, recomputing their routes' version on the way): `/api/v1`'s router holds nearly every
route, so a request for any other path (`/websub/hub`, `/healthz`, `/e/{name}`, the console)
tried about 100 route patterns before it reached its own, ~170 µs of CPU on this machine. Every
route under a prefixed router has a path that starts with the literal prefix (FastAPI prepends
it; a `Host` route, matched by its host name, has no place under one), so a path that does not
start with it can match none of them: the answer is the same, without trying them. A router
whose prefix holds a parameter, or a FastAPI whose internals differ, is matched the ordinary way.
"""

from __future__ import annotations

from typing import Any

import fastapi.routing
from fastapi import APIRouter
from starlette._utils import get_route_path
from starlette.routing import Match
from starlette.types import Scope

#: the inclusion FastAPI is matching (it holds the prefixes the router was included under)
_included_router: Any = getattr(fastapi.routing, "_get_scope_included_router", None)


class PrefixedRouter(APIRouter):
    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if _included_router is not None and "{" not in self.prefix:
            included = _included_router(scope)
            context = getattr(included, "include_context", None)
            outer = getattr(context, "prefix", None)
            if (
                getattr(included, "original_router", None) is self
                and isinstance(outer, str)
                and "{" not in outer
                and not get_route_path(scope).startswith(outer + self.prefix)
            ):
                return Match.NONE, {}
        return super().matches(scope)
