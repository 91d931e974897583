"""Which IP addresses the hub may connect to: global unicast only, unless an operator allowed a
network (`websub_allow_networks`, e.g. the loopback for tests or an intranet).

The hub makes requests to URLs anyone can hand it (callbacks, topics), so without this it could be
pointed at the cloud metadata service, the machine's own Redis or an intranet (SSRF). Python's
`is_global` tables differ between releases (3.11 still calls 6to4, NAT64 and IPv4-compatible
addresses global), so the special-purpose ranges are also listed here. Addresses that carry an
IPv4 address inside (IPv4-mapped, 6to4, Teredo, NAT64, IPv4-compatible) are judged by that IPv4
address too.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: host, port → the addresses a name resolves to (injectable: tests map names without DNS)
Resolver = Callable[[str, int], Awaitable[list[str]]]

#: IANA special-purpose ranges refused whatever the Python version says about them
_NOT_PUBLIC: tuple[IPNetwork, ...] = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",  # "this network"
        "10.0.0.0/8",
        "100.64.0.0/10",  # shared address space (carrier NAT; cloud metadata lives here too)
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local, 169.254.169.254 metadata
        "172.16.0.0/12",
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # documentation
        "192.88.99.0/24",  # 6to4 relay anycast (deprecated)
        "192.168.0.0/16",
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, and 255.255.255.255 broadcast
        "::/96",  # unspecified, loopback, IPv4-compatible (deprecated)
        "::ffff:0:0/96",  # IPv4-mapped: judged by its IPv4 address instead
        "64:ff9b:1::/48",  # local-use NAT64
        "100::/64",  # discard-only
        "2001::/23",  # IETF protocol assignments, Teredo 2001::/32 among them
        "2001:db8::/32",  # documentation
        "2002::/16",  # 6to4
        "3fff::/20",  # documentation (RFC 9637)
        "5f00::/16",  # SRv6 SIDs
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
        "fec0::/10",  # site-local (deprecated)
        "ff00::/8",  # multicast
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


class AddressRefused(ValueError):
    """An address the policy does not let the hub connect to; the message says which and why."""


def embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address leads to (6to4, Teredo server and client, NAT64,
    IPv4-compatible); IPv4-mapped addresses are handled as their IPv4 address by `normalize`."""
    found: list[ipaddress.IPv4Address] = []
    if ip.sixtofour is not None:
        found.append(ip.sixtofour)
    if ip.teredo is not None:
        found.extend(ip.teredo)
    if ip in _NAT64 or (ip in _IPV4_COMPATIBLE and int(ip) > 1):
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return found


def normalize(ip: IPAddress) -> IPAddress:
    """An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) is that IPv4 address on a dual-stack socket;
    a scope id (`fe80::1%eth0`) does not change what the address is."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip.scope_id:
            return ipaddress.IPv6Address(int(ip))
    return ip


def is_public(ip: IPAddress) -> bool:
    """Global unicast: `is_global`, not multicast, in none of the special-purpose ranges."""
    if not ip.is_global or ip.is_multicast:
        return False
    return not any(ip.version == net.version and ip in net for net in _NOT_PUBLIC)


class AddressPolicy:
    """Global unicast addresses, plus the networks an operator explicitly allowed."""

    def __init__(self, allow_networks: Iterable[str] = ()) -> None:
        try:
            self.allowed: tuple[IPNetwork, ...] = tuple(
                ipaddress.ip_network(n, strict=False) for n in allow_networks
            )
        except ValueError as exc:
            raise ValueError(f"websub_allow_networks: {exc}") from None

    def _permitted(self, ip: IPAddress) -> bool:
        return is_public(ip) or any(ip.version == n.version and ip in n for n in self.allowed)

    def refusal(self, address: str) -> str | None:
        """Why the hub must not connect to `address`, or None when it may."""
        try:
            ip = normalize(ipaddress.ip_address(address))
        except ValueError:
            return f"{address!r} is not an IP address"
        if not self._permitted(ip):
            return f"{ip} is not a public address"
        if isinstance(ip, ipaddress.IPv6Address):
            for inner in embedded_ipv4(ip):
                if not self._permitted(inner):
                    return f"{ip} leads to {inner}, which is not a public address"
        return None

    def check(self, addresses: Iterable[str]) -> None:
        """Raise `AddressRefused` unless every address is allowed (one bad answer is enough:
        a name that also resolves to a private address is refused whole)."""
        for address in addresses:
            reason = self.refusal(address)
            if reason is not None:
                raise AddressRefused(reason)


async def system_resolver(host: str, port: int) -> list[str]:
    """The addresses `host` resolves to, in the order the system gives them, without repeats."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


async def resolve(host: str, port: int, resolver: Resolver = system_resolver) -> list[str]:
    """An IP literal as is (no lookup), a name through `resolver`."""
    bare = host.strip("[]")
    try:
        return [str(ipaddress.ip_address(bare))]
    except ValueError:
        pass
    addresses = await resolver(bare, port)
    if not addresses:
        raise OSError(f"{host} resolves to no address")
    return addresses
