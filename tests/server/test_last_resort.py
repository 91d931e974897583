"""The last resort: an exception no handler expects becomes a JSON 500 `internal` naming the
request id, its traceback logged and never shown, wherever it is raised: in a route (inside
the app's middleware) or in middleware outside ours (Starlette's ServerErrorMiddleware, which
answers `Internal Server Error` as text/plain unless given a handler).

A real fnhub app on uvicorn with real Redis, and two routes/middleware added for the test,
since no route of the app itself is meant to fail this way."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from tests.conftest import free_port

from fnhub.config import Settings
from fnhub.server.app import create_app
from fnhub.store.db import Database

SECRET = "the secret detail of a bug"


class _FailingOutside:
    """Raw ASGI middleware added last, so it sits outside fnhub's `RequestMiddleware`."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/outer-bug":
            raise RuntimeError(SECRET)
        await self.app(scope, receive, send)


@pytest.fixture
def server(settings: Settings) -> Iterator[str]:
    db = Database(settings.resolved_db_url())
    db.migrate()
    db.dispose()
    app = create_app(settings)

    @app.get("/inner-bug")
    async def inner_bug() -> None:
        raise RuntimeError(SECRET)

    app.add_middleware(_FailingOutside)
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical")
    uvicorn_server = uvicorn.Server(config)
    thread = threading.Thread(target=uvicorn_server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while not uvicorn_server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
        time.sleep(0.05)
    try:
        yield url
    finally:
        uvicorn_server.should_exit = True
        thread.join(20)


@pytest.mark.parametrize("path", ["/inner-bug", "/outer-bug"])
def test_an_unexpected_exception_answers_json_500_and_logs_the_traceback(
    server: str, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="fnhub.server.errors")
    answer = httpx.get(server + path, headers={"X-Request-Id": "bug-42"}, timeout=10)
    assert answer.status_code == 500
    assert answer.headers["content-type"] == "application/json"
    request_id = answer.headers["x-request-id"]
    assert answer.json() == {
        "error": {"code": "internal", "message": "internal error", "request_id": request_id}
    }
    if path == "/inner-bug":  # outside, the request never reached the middleware naming it
        assert request_id == "bug-42"
    assert SECRET not in answer.text and "Traceback" not in answer.text
    logged = [r for r in caplog.records if r.name == "fnhub.server.errors"]
    assert logged and request_id in logged[0].getMessage()
    assert logged[0].exc_info and str(logged[0].exc_info[1]) == SECRET


def test_the_server_goes_on_answering_after_one(server: str) -> None:
    assert httpx.get(server + "/inner-bug", timeout=10).status_code == 500
    assert httpx.get(server + "/healthz", timeout=10).json() == {"status": "ok"}
