"""The hub's HTTP transport: every connection goes to an address the `AddressPolicy` allows,
checked on the address actually dialled.

A check before the request and a second lookup by the HTTP client would let a name answer with a
public address first and a private one a moment later (DNS rebinding). Here the network backend
resolves the name itself, refuses it if any answer is not allowed, and connects to the checked IP
literal, so nothing resolves the name again. TLS still verifies the certificate against the
URL's host name (httpcore passes it as the server name). Verifications, topic fetches and
deliveries all use this transport; environment proxies are never used.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

from fnhub.websub.addresses import (
    AddressPolicy,
    AddressRefused,
    Resolver,
    resolve,
    system_resolver,
)


class RefusedConnection(httpcore.ConnectError):
    """The destination's address is not allowed (httpx raises it as `httpx.ConnectError`)."""


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolve, check every address, then connect to a checked IP (trying each in turn)."""

    def __init__(
        self,
        policy: AddressPolicy,
        resolver: Resolver = system_resolver,
        backend: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self.policy = policy
        self.resolver = resolver
        self.backend = backend or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await resolve(host, port, self.resolver)
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        try:
            self.policy.check(addresses)
        except AddressRefused as exc:
            raise RefusedConnection(f"refused to connect to {host}: {exc}") from None
        error: Exception | None = None
        for address in addresses:
            try:
                return await self.backend.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        assert error is not None
        raise error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise RefusedConnection("the hub does not connect to unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self.backend.sleep(seconds)


def guarded_transport(
    policy: AddressPolicy,
    *,
    verify: ssl.SSLContext | bool = True,
    limits: httpx.Limits | None = None,
    resolver: Resolver = system_resolver,
) -> httpx.AsyncHTTPTransport:
    """An httpx transport whose connections go through `GuardedBackend`.

    httpx does not take a network backend, so the transport's httpcore pool is replaced by an
    equal one that has it (`AsyncHTTPTransport` sends every request through `_pool`)."""
    limits = limits or httpx.Limits()
    transport = httpx.AsyncHTTPTransport(verify=verify, trust_env=False, limits=limits)
    ssl_context = verify if isinstance(verify, ssl.SSLContext) else httpx.create_ssl_context(verify)
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=ssl_context,
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=GuardedBackend(policy, resolver),
    )
    return transport


def guarded_client(
    policy: AddressPolicy,
    *,
    verify: ssl.SSLContext | bool = True,
    limits: httpx.Limits | None = None,
    resolver: Resolver = system_resolver,
    **kwargs: Any,
) -> httpx.AsyncClient:
    """An `httpx.AsyncClient` on the guarded transport; redirects are never followed."""
    return httpx.AsyncClient(
        transport=guarded_transport(policy, verify=verify, limits=limits, resolver=resolver),
        follow_redirects=False,
        trust_env=False,
        **kwargs,
    )
