"""What the hub accepts: callback and topic URLs (syntax, scheme, addresses), leases, secrets.

Errors are `PolicyError` with a plain-text reason the hub returns as a 400 (§5.1.2) or sends as
`hub.reason` in a denial.
"""

from __future__ import annotations

import hashlib
from urllib.parse import urlsplit

from fnhub.config import Settings
from fnhub.websub.addresses import AddressPolicy, AddressRefused, Resolver, resolve, system_resolver

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
    import httpx  # here: `fnhub.websub` is imported by every command, httpx costs it 40 ms

    try:  # both parsers: ours reads the parts, httpx's must accept what it will be asked to send
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
        httpx.URL(url)
    except (ValueError, httpx.InvalidURL) as exc:
        raise PolicyError(f"{what} is not a valid URL: {exc}") from None
    if parts.scheme.lower() not in settings.websub_allowed_schemes:
        allowed = ", ".join(settings.websub_allowed_schemes)
        raise PolicyError(f"{what} must use one of the schemes: {allowed}")
    if not host:
        raise PolicyError(f"{what} has no host")
    if port == 0:
        raise PolicyError(f"{what} has port 0")
    if parts.fragment:
        raise PolicyError(f"{what} must not contain a fragment")
    return url


async def check_address(
    url: str, what: str, policy: AddressPolicy, resolver: Resolver = system_resolver
) -> None:
    """Refuse a URL whose host resolves to an address the policy does not allow, before the
    request is queued (a clear 400, no verification GET). This is only the early answer: the
    hub's transport checks the address it actually connects to (`transport.GuardedBackend`).
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    try:
        addresses = await resolve(host, port, resolver)
    except OSError as exc:
        raise PolicyError(f"{what} host {host!r} does not resolve") from exc
    try:
        policy.check(addresses)
    except AddressRefused as exc:
        raise PolicyError(f"{what} refused: {exc}") from None


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
