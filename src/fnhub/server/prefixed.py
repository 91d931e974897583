"""An `APIRouter` that answers "no match" at once for a path none of its routes can match.

FastAPI matches an included router by trying each of its routes in turn (and each nested
router's, recomputing their routes' version on the way): `/api/v1`'s router holds nearly every
route, so a request for any other path (`/websub/hub`, `/healthz`, `/e/{name}`, the console,
DataFlux Func's `/api/v1/sync/{id}` beside it) tried about 100 route patterns before it reached
its own, ~170 µs of CPU on this machine. Every route under a prefixed router has a path that
starts with the literal prefix (FastAPI prepends it; a `Host` route, matched by its host name,
has no place under one), and each starts with a literal segment after it (`/functions`,
`/tasks`, ...): a path outside the prefix, or whose next segment no route has, can match none
of them, so the answer is the same without trying them. The segments are read once; before a
path is refused for its segment they are read again if FastAPI's version of the routes moved
(a route added since). A route whose first segment holds a parameter turns the second check
off, a prefix holding one both, and so does a FastAPI whose internals differ: such a router is
matched the ordinary way.
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


def first_segment(rest: str) -> str | None:
    """The segment after the prefix of a path whose rest is `rest` ("" for none); None when
    the rest does not start a segment (`/api/v1x`)."""
    if not rest:
        return ""
    if rest[0] != "/":
        return None
    return rest[1:].split("/", 1)[0]


class PrefixedRouter(APIRouter):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: full prefix → (routes version, first segments of the routes, or ANY)
        self._segments: dict[str, tuple[int, _Segments]] = {}

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if _included_router is not None and "{" not in self.prefix:
            included = _included_router(scope)
            outer = getattr(getattr(included, "include_context", None), "prefix", None)
            if (
                getattr(included, "original_router", None) is self
                and isinstance(outer, str)
                and "{" not in outer
            ):
                full = outer + self.prefix
                path = get_route_path(scope)
                if not path.startswith(full):
                    return Match.NONE, {}
                segment = first_segment(path[len(full) :])
                # no route had it when they were last read, nor has now (one added since)
                read = self._first_segments(included, full, fresh=False)
                if segment not in read and segment not in self._first_segments(
                    included, full, fresh=True
                ):
                    return Match.NONE, {}
        return super().matches(scope)

    def _first_segments(self, included: Any, full: str, *, fresh: bool) -> _Segments:
        """The first segments after `full` of this router's routes, as read last time, or, with
        `fresh`, as they are now (FastAPI's routes version walks every nested router: only a
        path about to be refused pays for it)."""
        known = self._segments.get(full)
        version = self._get_routes_version() if fresh or known is None else known[0]
        if known is not None and known[0] == version:
            return known[1]
        segments: set[str] = set()
        contexts = getattr(included, "effective_route_contexts", None)
        for context in contexts() if contexts is not None else [None]:
            template = getattr(context, "path_format", None)
            segment = (
                first_segment(template[len(full) :])
                if isinstance(template, str) and template.startswith(full)
                else None
            )
            if segment is None or "{" in segment:
                found: _Segments = ANY
                break
            segments.add(segment)
        else:
            found = frozenset(segments)
        self._segments[full] = (version, found)
        return found


class _Any:
    """Holds every segment: a router whose routes' first segments are not all literal."""

    def __contains__(self, _segment: object) -> bool:
        return True


ANY = _Any()
_Segments = frozenset[str] | _Any
