"""Route matching on the server's app (`server.prefixed`): a path outside `/api/v1` is not tried
against the API's routes, and every route is still matched as before."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import fastapi.routing
import pytest
from fastapi import FastAPI
from starlette.routing import Match

from fnhub.config import load_settings
from fnhub.server.app import API_PREFIX, build_routes, create_app


def _new_app(tmp: Path) -> FastAPI:
    with pytest.MonkeyPatch.context() as env:
        env.setenv("FNHUB_DATA_DIR", str(tmp / ".fnhub"))
        app = create_app(load_settings(tmp))
    build_routes(app)
    return app


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    return _new_app(tmp_path_factory.mktemp("routes"))


def _scope(app: FastAPI, method: str, path: str) -> dict[str, Any]:
    return {
        "type": "http",
        "method": method,
        "path": path,
        "root_path": "",
        "headers": [],
        "query_string": b"",
        "app": app,
    }


def _matched(app: FastAPI, method: str, path: str) -> tuple[Match, Any] | None:
    """How FastAPI's router matches the request at the top level, and the route (an included
    router for the routes under one) it hands the request to."""
    partial = None
    for route in app.router.routes:
        match, _child = route.matches(_scope(app, method, path))
        if match == Match.FULL:
            return match, route
        if match == Match.PARTIAL and partial is None:
            partial = match, route
    return partial


def _api_routers(app: FastAPI) -> set[int]:
    """The routers included under `/api/v1`'s router (and itself)."""
    api = next(
        r.original_router
        for r in app.router.routes
        if isinstance(r, fastapi.routing._IncludedRouter) and r.original_router.prefix == API_PREFIX
    )
    out, todo = set(), [api]
    while todo:
        router = todo.pop()
        out.add(id(router))
        todo.extend(
            r.original_router
            for r in router.routes
            if isinstance(r, fastapi.routing._IncludedRouter)
        )
    return out


def test_paths_outside_the_api_skip_its_routes(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fails on main: `/websub/hub` was tried against every router under `/api/v1`."""
    tried: list[int] = []
    real = fastapi.routing._IncludedRouter._match

    def spy(self: Any, scope: Any) -> Any:
        tried.append(id(self.original_router))
        return real(self, scope)

    monkeypatch.setattr(fastapi.routing._IncludedRouter, "_match", spy)
    api = _api_routers(app)
    outside = [("POST", "/websub/hub"), ("GET", "/healthz"), ("GET", "/e/x")]
    beside = [("GET", f"{API_PREFIX}/sync/x"), ("POST", f"{API_PREFIX}/async/x/y")]  # dff
    for method, path in outside + beside:
        tried.clear()
        assert _matched(app, method, path) is not None
        assert tried and not api.intersection(tried), path
    tried.clear()
    assert _matched(app, "GET", f"{API_PREFIX}/tasks/x") is not None
    assert api.intersection(tried)


def test_every_route_matches_as_without_the_shortcut(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each route's own path (and its neighbours with a slash more or less, as redirects try)
    finds the same route with the shortcut as without it."""
    requests = []
    for context in fastapi.routing.iter_route_contexts(app.routes):
        path = getattr(context, "path_format", None) or getattr(context, "path", None)
        if not isinstance(path, str):
            continue
        concrete = re.sub(r"\{[^}]*\}", "x", path)
        for method in sorted(getattr(context, "methods", None) or {"GET"}):
            requests += [(method, concrete), (method, concrete + "/"), (method, concrete + "/y")]
    assert len(requests) > 300
    for path in ("/api/v1", "/api/v1/", "/api/v1x", "/api/v1/nope", "/api/v1//functions", "/"):
        requests += [("GET", path), ("POST", path)]
    from fnhub.server import prefixed  # not on main: this test's other half fails there

    guarded = [_matched(app, m, p) for m, p in requests]
    monkeypatch.setattr(prefixed, "_included_router", None)
    assert guarded == [_matched(app, m, p) for m, p in requests]


def test_a_route_added_later_is_matched(tmp_path: Path) -> None:
    """The first segments read before a route was added under `/api/v1` do not hide it."""
    app = _new_app(tmp_path)
    path = f"{API_PREFIX}/later-added"
    api = next(
        r
        for r in app.router.routes
        if isinstance(r, fastapi.routing._IncludedRouter) and r.original_router.prefix == API_PREFIX
    )
    assert _matched(app, "GET", path) is None  # the segments are read

    async def later() -> dict[str, bool]:
        return {"later": True}

    api.original_router.add_api_route("/later-added", later, methods=["GET"])
    assert _matched(app, "GET", path) == (Match.FULL, api)
