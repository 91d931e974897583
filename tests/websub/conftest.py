"""Hub fixtures: hub settings with small retry/lease limits, the real server app served by
uvicorn (admin calls carry an API key, `/websub/hub` none), and subscriber callbacks.

The callbacks and topics run on 127.0.0.1, which the hub refuses by default, so the settings
allow 127.0.0.0/8 explicitly; and they make the hub open (anonymous publishes, any topic), as the
protocol tests publish without credentials. Tests of the safe defaults override both.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from tests.conftest import free_port

from fnhub.config import Settings

from .harness import Served, Subscribers, bound_socket, prepare_server, server_app


@pytest.fixture
def hub_settings(settings: Settings) -> Settings:
    port = free_port()  # the hub runs in its own process: it binds the port itself
    return settings.model_copy(
        update={
            "port": port,
            "websub_hub_url": f"http://127.0.0.1:{port}/websub/hub",
            "websub_allow_networks": ["127.0.0.0/8"],
            "websub_open": True,
            "websub_lease_min": 1,
            "websub_retry_initial": 0.05,
            "websub_retry_factor": 2.0,
            "websub_retry_max_interval": 0.2,
            "websub_retry_max_attempts": 4,
            "websub_retry_deadline": 5.0,
            "websub_delivery_timeout": 2.0,
            "websub_verify_timeout": 2.0,
            "websub_owner_ttl": 2.0,
        }
    )


class HubClient:
    """A running hub and an HTTP client for its public and management endpoints."""

    def __init__(self, served: Served, settings: Settings, token: str) -> None:
        self.served = served
        self.settings = settings
        self.url = settings.websub_hub_url
        self.token = token
        self.http = httpx.AsyncClient(base_url=served.url, timeout=10)  # no credentials
        self.credential: dict[str, str] = {}  # headers `post` sends: none unless a test sets them

    async def post(self, **params: str) -> httpx.Response:
        return await self.http.post("/websub/hub", data=params, headers=self.credential)

    async def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
        return await self.http.request(method, f"/api/v1/websub{path}", headers=headers, **kwargs)

    async def subscriptions(self, **params: str) -> list[dict[str, Any]]:
        r = await self.api("GET", "/subscriptions", params=params)
        r.raise_for_status()
        return r.json()


@pytest.fixture
async def start_hub(
    hub_settings: Settings,
) -> AsyncIterator[Callable[..., Awaitable[HubClient]]]:
    running: list[HubClient] = []

    async def start(**overrides: Any) -> HubClient:
        s = hub_settings.model_copy(update=overrides)
        sock = bound_socket() if running else None
        if sock is None:  # the first hub gets the port the hub URL names
            import socket

            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", s.port))
        token = prepare_server(s)
        served = await Served(server_app(s), sock).start()
        client = HubClient(served, s, token)
        running.append(client)
        return client

    yield start
    for c in running:
        await c.http.aclose()
        await c.served.stop()


@pytest.fixture
async def hub(start_hub: Callable[..., Awaitable[HubClient]]) -> HubClient:
    return await start_hub()


@pytest.fixture
async def subscribers() -> AsyncIterator[Subscribers]:
    subs = Subscribers()
    await subs.served.start()
    yield subs
    await subs.served.stop()
