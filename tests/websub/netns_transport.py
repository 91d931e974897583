"""Checks of the hub's guarded HTTP transport, run by `test_transport.py` inside a new network
namespace (`unshare -n`) whose only interface is the loopback, so that even a bug here cannot send
a packet off the machine. Prints `ok <check>` per check; exits non-zero on the first failure.

Usage (as root): unshare -n python netns_transport.py
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys

import httpx

from fnhub.websub.addresses import AddressPolicy
from fnhub.websub.policy import check_address
from fnhub.websub.transport import guarded_client


def loopback_only() -> None:
    names = sorted(name for _, name in socket.if_nameindex())
    if names != ["lo"]:
        sys.exit(f"not in a loopback-only network namespace (interfaces: {names}); not running")
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)


class Server:
    """A tiny HTTP server on 127.0.0.1 that counts the connections it accepts."""

    def __init__(self) -> None:
        self.connections = 0
        self.port = 0

    async def start(self) -> None:
        server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        await writer.drain()
        writer.close()


class Names:
    """A resolver that answers from a table (no DNS, no /etc/hosts) and counts its lookups; a
    list of answers per name is used up one lookup at a time (DNS rebinding)."""

    def __init__(self, table: dict[str, list[list[str]]]) -> None:
        self.table = table
        self.lookups: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.lookups.append(host)
        answers = self.table[host]
        return answers.pop(0) if len(answers) > 1 else answers[0]


async def refused(client: httpx.AsyncClient, url: str, server: Server, why: str) -> None:
    before = server.connections
    try:
        await client.get(url)
    except httpx.ConnectError as exc:
        assert why in str(exc), str(exc)
    else:
        raise AssertionError(f"{url} was not refused")
    await asyncio.sleep(0.05)
    assert server.connections == before, "a refused request reached the server"


async def connects(client: httpx.AsyncClient, url: str, server: Server) -> None:
    before = server.connections
    r = await client.get(url)
    assert r.status_code == 200 and r.text == "ok", r
    assert server.connections == before + 1


async def main() -> None:
    loopback_only()
    server = Server()
    await server.start()
    url = f"http://127.0.0.1:{server.port}/"
    # `localhost` may also resolve to ::1 (where nothing listens): every answer must be allowed
    strict, loopback = AddressPolicy(), AddressPolicy(["127.0.0.0/8", "::1/128"])

    async with guarded_client(strict) as client:
        await refused(client, url, server, "127.0.0.1 is not a public address")
        await refused(client, f"http://[::ffff:127.0.0.1]:{server.port}/", server, "public")
        await refused(client, f"http://localhost:{server.port}/", server, "not a public address")
    print("ok refused without the allow-list")

    async with guarded_client(loopback) as client:
        await connects(client, url, server)
        await connects(client, f"http://localhost:{server.port}/", server)  # /etc/hosts
    print("ok connects with the allow-list")

    names = Names({"intranet.example": [["127.0.0.1"]]})
    async with guarded_client(strict, resolver=names) as client:
        await refused(client, f"http://intranet.example:{server.port}/", server, "not a public")
    print("ok a name resolving to a private address is refused at connect time")

    # DNS rebinding: the early check sees a public address, the connection would get 127.0.0.1
    names = Names({"rebind.example": [["93.184.216.34"], ["127.0.0.1"]]})
    rebind = f"http://rebind.example:{server.port}/"
    await check_address(rebind, "hub.callback", strict, names)  # resolves only, connects nowhere
    async with guarded_client(strict, resolver=names) as client:
        await refused(client, rebind, server, "127.0.0.1 is not a public address")
    assert names.lookups == ["rebind.example", "rebind.example"]
    print("ok rebinding after the early check is refused at connect time")

    # the connection goes to the checked address: "svc.example" exists in no DNS or hosts file
    names = Names({"svc.example": [["127.0.0.1"]], "mixed.example": [["127.0.0.1", "10.0.0.1"]]})
    async with guarded_client(loopback, resolver=names) as client:
        await connects(client, f"http://svc.example:{server.port}/", server)
        assert names.lookups == ["svc.example"], names.lookups  # once, by the transport
        await refused(client, f"http://mixed.example:{server.port}/", server, "10.0.0.1")
    print("ok one lookup, connected to the checked address; one bad answer refuses the name")


if __name__ == "__main__":
    asyncio.run(main())
