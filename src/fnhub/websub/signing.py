"""Content distribution headers: `X-Hub-Signature` (§7.1) and the combined `Link` header (§7)."""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import quote

ALGORITHMS = ("sha1", "sha256", "sha384", "sha512")


def check_algorithm(name: str) -> str:
    if name not in ALGORITHMS:
        raise ValueError(f"websub_signature_algorithm must be one of {', '.join(ALGORITHMS)}")
    return name


def signature(secret: str, body: bytes, algorithm: str) -> str:
    """`method=hexdigest`, the only form §7.1 allows."""
    digest = hmac.new(secret.encode(), body, getattr(hashlib, check_algorithm(algorithm)))
    return f"{algorithm}={digest.hexdigest()}"


def verify(secret: str, body: bytes, header: str) -> bool:
    """Subscriber-side check (used by the example receiver and tests)."""
    method, _, given = header.partition("=")
    if method not in ALGORITHMS:
        return False
    return hmac.compare_digest(signature(secret, body, method), f"{method}={given}")


def link_header(hub_url: str, topic: str) -> str:
    """One `Link` header, both relations, RFC 8288 angle brackets (Ballerina omits them)."""
    return f'<{as_uri(hub_url)}>; rel="hub", <{as_uri(topic)}>; rel="self"'


def as_uri(url: str) -> str:
    """Percent-encode what a header cannot carry (non-ASCII, spaces); keep existing escapes."""
    return quote(url, safe=":/?#[]@!$&'()*+,;=%~")
