"""What the hub accepts: callback and topic URLs (scheme, SSRF ranges), leases, secrets.

Errors are `PolicyError` with a plain-text reason the hub returns as a 400 (§5.1.2) or sends as
`hub.reason` in a denial.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import socket
from urllib.parse import urlsplit

from fnhub.config import Settings

SECRET_MAX_BYTES = 199  # §5.1: "MUST be less than 200 bytes"
URL_MAX_LENGTH = 2048


class PolicyError(ValueError):
    """A request the hub refuses; the message is the reason shown to the client."""


def url_hash(url: str) -> str:
    """Stable short id for a URL, used in keys and unique indexes (URLs can be long)."""
    return hashlib.sha1(url.encode()).hexdigest()


def check_url(url: str, what: str, settings: Settings) -> str:
    """Syntax and scheme of a callback or topic URL (no network)."""
    if not url:
        raise PolicyError(f"{what} is required")
    if len(url) > URL_MAX_LENGTH:
        raise PolicyError(f"{what} is longer than {URL_MAX_LENGTH} characters")
    parts = urlsplit(url)
    if parts.scheme.lower() not in settings.websub_allowed_schemes:
        allowed = ", ".join(settings.websub_allowed_schemes)
        raise PolicyError(f"{what} must use one of the schemes: {allowed}")
    if not parts.hostname:
        raise PolicyError(f"{what} has no host")
    if parts.fragment:
        raise PolicyError(f"{what} must not contain a fragment")
    return url


def _forbidden(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


async def check_address(url: str, what: str, settings: Settings) -> None:
    """Refuse URLs whose host resolves to a private, loopback or link-local address (SSRF).

    Only when `websub_deny_private` is on. Checked before every verification and topic fetch;
    DNS answers that change between the check and the connection are not caught.
    """
    if not settings.websub_deny_private:
        return
    host = urlsplit(url).hostname or ""
    port = urlsplit(url).port or 443
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise PolicyError(f"{what} host {host!r} does not resolve") from exc
    for info in infos:
        if _forbidden(str(info[4][0])):
            raise PolicyError(f"{what} resolves to a private or loopback address")


def grant_lease(requested: str | None, settings: Settings) -> int:
    """The lease the hub grants: the request clamped to [min, max], or the default."""
    if requested in (None, ""):
        return settings.websub_lease_default
    try:
        value = int(requested)
    except ValueError:
        raise PolicyError("hub.lease_seconds must be a positive integer") from None
    if value <= 0:
        raise PolicyError("hub.lease_seconds must be a positive integer")
    return max(settings.websub_lease_min, min(settings.websub_lease_max, value))


def check_secret(secret: str | None) -> str | None:
    if secret is None or secret == "":
        return None
    if len(secret.encode()) > SECRET_MAX_BYTES:
        raise PolicyError("hub.secret must be less than 200 bytes")
    return secret
