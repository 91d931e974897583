"""Pure ASGI middleware on every request: request id, body size limit, structured access log,
request counts and latency for `/metrics` (in memory, `fnhub.ops_stats`), and the last resort:
an exception no handler took becomes a JSON 500 naming the request id.

Written against raw ASGI rather than `BaseHTTPMiddleware` because it sits on the hot path of
every sync call: it adds no task, no copy of the body and one header.
"""

from __future__ import annotations

import logging
import os
import re
import time
from typing import Any

import orjson
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Message, Receive, Scope, Send

from fnhub.ops_stats import Counts, status_class
from fnhub.server.errors import error_response, internal_error

access_log = logging.getLogger("fnhub.access")
_SAFE_ID = re.compile(rb"^[A-Za-z0-9._:-]{1,128}$")
#: methods counted by name; any other a client sends is counted as "other"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
#: the route label of a request no route matched (its path is free-form: never a label)
UNMATCHED = "unmatched"


def route_template(scope: Scope) -> str:
    """The matched route's full path template (`/api/v1/tasks/{task_id}`); `UNMATCHED` when no
    route matched.

    The router leaves the route in the scope, but a route of an included router knows only its
    own part of the template (`/tasks/{task_id}`), not the prefixes it was included under. Those
    are the start of the request's path before the first `/` from which the route's pattern
    matches the rest: the true prefix is literal, so the first such start is at most as long,
    and the label is always a configured prefix's start plus the route's own template, never a
    value from the request."""
    route = scope.get("route")
    template = getattr(route, "path", None)
    pattern = getattr(route, "path_regex", None)
    if not isinstance(template, str) or not template or pattern is None:
        return UNMATCHED
    path: str = scope["path"]
    known = _prefixes.get(id(route))
    if known is not None and known[0] is route:
        prefix = known[1]
        if path.startswith(prefix) and pattern.match(path[len(prefix) :]):
            return prefix + template
    start = 0
    while start != -1:
        if pattern.match(path[start:]):
            _prefixes[id(route)] = (route, path[:start])
            return path[:start] + template
        start = path.find("/", start + 1)
    return template


#: id(route) → the route and the prefix it was last found under (routes need not be hashable;
#: kept alive here, so an id is never reused: as many entries as routes)
_prefixes: dict[int, tuple[Any, str]] = {}


class BodyTooLarge(StarletteHTTPException):
    """An HTTPException, so FastAPI's body parsing passes it on and it is answered with 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body is over the limit of {limit} bytes")


class RequestMiddleware:
    def __init__(
        self,
        app: Any,
        *,
        body_max_bytes: int,
        log_requests: bool = True,
        counts: Counts | None = None,
    ) -> None:
        self.app = app
        self.body_max_bytes = body_max_bytes
        self.log_requests = log_requests
        self.counts = counts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        request_id = b""
        length = None
        for name, value in scope["headers"]:
            if name == b"x-request-id" and _SAFE_ID.match(value):
                request_id = value
            elif name == b"content-length":
                length = int(value) if value.isdigit() else None
        if not request_id:
            request_id = os.urandom(8).hex().encode()
        scope.setdefault("state", {})["request_id"] = request_id.decode()
        status = 500
        started = False
        limit = self.body_max_bytes
        received = 0

        async def send_wrapper(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), (b"x-request-id", request_id)]
            await send(message)

        async def receive_wrapper() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        try:
            if length is not None and length > limit:
                raise BodyTooLarge(limit)
            await self.app(scope, receive_wrapper, send_wrapper)
        except BodyTooLarge as exc:
            if started:
                raise
            response = error_response(413, "too_large", str(exc.detail))
            await response(scope, receive, send_wrapper)
        except Exception as exc:
            if started:  # too late for an answer: the server drops the connection
                raise
            await internal_error(request_id.decode(), exc)(scope, receive, send_wrapper)
        finally:
            if self.counts is not None:
                route = route_template(scope)
                method = scope["method"] if scope["method"] in _METHODS else "other"
                self.counts.add(f"hr|{route}|{method}|{status_class(status)}")
                self.counts.observe("hl", route, time.perf_counter() - start)
            if self.log_requests and access_log.isEnabledFor(logging.INFO):
                fields = {
                    "request_id": request_id.decode(),
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "ms": round((time.perf_counter() - start) * 1000, 3),
                    "client": (scope.get("client") or ("", 0))[0],
                }
                # JSON logs (`fnhub.log_setup`) carry the fields themselves beside the message
                access_log.info(orjson.dumps(fields).decode(), extra={"fields": fields})
