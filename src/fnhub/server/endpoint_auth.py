"""Checking a caller against an endpoint's auth: token, basic, HMAC (with replay guard), function.

Every failure answers the same 401 "authentication failed" (403 when an auth function said no),
so a caller learns nothing about which part was wrong.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import time
from typing import TYPE_CHECKING, Any

from starlette.requests import Request

from fnhub.server import redaction
from fnhub.server.errors import ApiError
from fnhub.tasks import Origin

if TYPE_CHECKING:
    from fnhub.server.endpoints import LiveEndpoint

TIMESTAMP_HEADER = "X-Fnhub-Timestamp"
NONCE_HEADER = "X-Fnhub-Nonce"
SIGNATURE_HEADER = "X-Fnhub-Signature"
_NONCE = re.compile(r"^[A-Za-z0-9_-]{8,128}$")


def _fail(auth_type: str) -> ApiError:
    headers = {"WWW-Authenticate": 'Basic realm="fnhub"'} if auth_type == "basic" else None
    return ApiError(401, "unauthorized", "authentication failed", headers=headers)


def _equal(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def signature(
    secret: str, method: str, target: str, timestamp: str, nonce: str, body: bytes
) -> str:
    """Hex HMAC-SHA256 of `METHOD\\npath?query\\ntimestamp\\nnonce\\nsha256(body)`."""
    message = "\n".join(
        [method.upper(), target, timestamp, nonce, hashlib.sha256(body).hexdigest()]
    )
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def request_target(request: Request) -> str:
    query = request.scope.get("query_string", b"").decode("latin-1")
    return request.url.path + (f"?{query}" if query else "")


async def check(request: Request, body: bytes, ep: LiveEndpoint, ctx: Any, caller: Any) -> None:
    auth, endpoint = ep.auth, ep.name
    kind = auth.get("type", "none")
    if kind == "none":
        return
    if kind == "token":
        source = request.headers if auth["location"] == "header" else request.query_params
        if not _equal(source.get(auth["field"]), auth["token"]):
            raise _fail(kind)
        return
    if kind == "basic":
        header = request.headers.get("authorization", "")
        scheme, _, encoded = header.partition(" ")
        try:
            user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise _fail(kind) from None
        ok_user = _equal(user, auth["username"])
        ok_password = _equal(password, auth["password"])
        if scheme.lower() != "basic" or not (ok_user and ok_password):
            raise _fail(kind)
        return
    if kind == "hmac":
        await _check_hmac(request, body, auth, endpoint, ctx)
        return
    if kind == "function":
        await _check_function(request, auth, endpoint, caller, ep.redact)
        return
    raise _fail(kind)


async def _check_hmac(
    request: Request, body: bytes, auth: dict[str, Any], endpoint: str, ctx: Any
) -> None:
    timestamp = request.headers.get(TIMESTAMP_HEADER, "")
    nonce = request.headers.get(NONCE_HEADER, "")
    given = request.headers.get(SIGNATURE_HEADER, "").lower()
    if not timestamp.isdigit() or not _NONCE.match(nonce) or not given:
        raise _fail("hmac")
    skew = auth.get("max_skew", 300)
    if abs(time.time() - int(timestamp)) > skew:
        raise _fail("hmac")
    expected = signature(
        auth["secret"], request.method, request_target(request), timestamp, nonce, body
    )
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise _fail("hmac")
    # only a correctly signed request may use up its nonce; a second use is a replay
    fresh = await ctx.redis.set(ctx.keys.nonce(endpoint, nonce), b"1", nx=True, ex=2 * skew + 1)
    if not fresh:
        raise _fail("hmac")


async def _check_function(
    request: Request, auth: dict[str, Any], endpoint: str, caller: Any, redact: frozenset[str]
) -> None:
    """Ask the auth function. It gets the request whole, credentials included (deciding on
    them is its job); its task's record and result show them redacted."""
    described = {
        "method": request.method,
        "path": request.url.path,
        "query": dict(request.query_params),
        "headers": dict(request.headers),
        "client": request.client.host if request.client else None,
        "endpoint": endpoint,
    }
    task = await caller.make(
        auth["function"],
        {"request": described},
        origin=Origin.ENDPOINT_AUTH,
        origin_id=endpoint,
        reply_to=caller.reply_stream,
    )
    recorded = redaction.redact(task.kwargs, redact)
    if recorded is not task.kwargs:
        task.record_kwargs = recorded
    task.expires_at = task.trigger_time + task.timeout + 5.0
    result = await caller.call(task)
    if not (result.ok and result.result):
        raise ApiError(403, "forbidden", "access denied")
