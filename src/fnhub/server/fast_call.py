"""The call routes' usual case, answered before FastAPI's router: `POST
/api/v1/functions/{ref}/call` (a sync call) and `POST /api/v1/functions/{ref}/tasks` (an async
submission) with an API key and a body that validates.

These two are the requests a client sends per call, and on them FastAPI's route matching (each
nested router recomputes its routes' version on every request and is matched again when
handled), dependency solving (`authorize` and its three security schemes, the path and body
parameters) and exception middleware cost about as much CPU as the queue, the worker and Redis
together: an async submission cost the server ~370 µs of CPU the ordinary way. This pure ASGI
middleware, inside `RequestMiddleware` (request id, body limit, access log, metrics), does the
same steps with the same code: `AdminAuth.verify` and the role the route needs
(`access.route_role`), `CallRequest` / `SubmitRequest` for the body, `functions.call_task` /
`call_answer` or `submit_task` / `submit_answer` for the call.

Anything else goes the ordinary way, with the body it read handed on: no API key (a session
cookie, whose CSRF check lives in `access`), a key refused or without the role, a body that does
not validate, a call refused before it was enqueued (unknown function, bad kwargs): FastAPI then
gives the answer it always gave. Once a task is being enqueued nothing is tried twice: an error
from then on is answered by the app's own exception handler for it.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi.security.utils import get_authorization_scheme_param
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fnhub.accounts.roles import Role
from fnhub.calling.caller import Caller
from fnhub.server.access import route_role
from fnhub.server.api.functions import (
    call_answer,
    call_function,
    call_task,
    calls,
    submit_answer,
    submit_function,
    submit_task,
)
from fnhub.server.context import ServerContext
from fnhub.server.json_body import is_json_type
from fnhub.server.schemas import CallRequest, SubmitRequest
from fnhub.server.state import ServerState


@dataclass(frozen=True, slots=True)
class FastRoute:
    """One call route taken here: its FastAPI route (the metrics' label, the role it needs),
    its body model, what builds the call from the body (may refuse: the ordinary way answers
    then) and what enqueues it and answers (its errors go to the app's handlers)."""

    route: BaseRoute
    role: Role
    model: type[BaseModel]
    prepare: Callable[[Caller, str, Any, str], Awaitable[Any]]
    answer: Callable[[Caller, Any], Awaitable[Response]]


async def _submitted(caller: Caller, prepared: Any) -> Response:
    task, eta = prepared
    return await submit_answer(caller, task, eta)


def _route(endpoint: Callable[..., Any]) -> BaseRoute:
    return next(r for r in calls.routes if getattr(r, "endpoint", None) is endpoint)


def fast_routes() -> dict[str, FastRoute]:
    """The last segment of each call route's path → how it is taken here."""
    call, submit = _route(call_function), _route(submit_function)
    return {
        "call": FastRoute(call, route_role(call, "POST"), CallRequest, call_task, call_answer),
        "tasks": FastRoute(
            submit, route_role(submit, "POST"), SubmitRequest, submit_task, _submitted
        ),
    }


def _token(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The API key as `access.authorize` reads it: a Bearer token, else X-Api-Key."""
    bearer = api_key = None
    for name, value in headers:
        if name == b"authorization":
            scheme, credentials = get_authorization_scheme_param(value.decode("latin-1"))
            if scheme.lower() == "bearer" and credentials:
                bearer = credentials
        elif name == b"x-api-key":
            api_key = value.decode("latin-1")
    return bearer if bearer is not None else api_key


async def _read_body(receive: Receive) -> tuple[bytes, list[Message]]:
    """The whole body, and the messages it came in (to hand on unchanged)."""
    messages: list[Message] = []
    chunks: list[bytes] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return b"", messages  # the client went away
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks), messages


class FastCalls:
    def __init__(self, app: ASGIApp, *, prefix: str) -> None:
        self.app = app
        self.path = re.compile(re.escape(prefix) + r"/functions/([^/]+)/(call|tasks)")
        self.routes = fast_routes()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = None
        if scope["type"] == "http" and scope["method"] == "POST" and not scope.get("root_path"):
            match = self.path.fullmatch(scope["path"])
        token = _token(scope["headers"]) if match is not None else None
        if token is None:
            await self.app(scope, receive, send)
            return
        fast = self.routes[match.group(2)]  # type: ignore[union-attr]
        body, messages = await _read_body(receive)
        started = await self._prepare(scope, fast, match.group(1), token, body)  # type: ignore[union-attr]
        if started is None:
            await self.app(scope, _replay(messages, receive), send)
            return
        ctx, prepared = started
        scope["route"] = fast.route  # the metrics' route label, as if FastAPI had matched it
        try:
            response = await fast.answer(ctx.caller, prepared)
        except Exception as exc:
            response = await _handled(scope, exc)
        await response(scope, receive, send)

    async def _prepare(
        self, scope: Scope, fast: FastRoute, ref: str, token: str, body: bytes
    ) -> tuple[ServerContext, Any] | None:
        """(context, the call ready to enqueue), or None: the ordinary way answers this one."""
        app = scope["app"]
        state = getattr(app.state, "server", None)
        ctx = getattr(app.state, "ctx", None)
        if not isinstance(state, ServerState) or not isinstance(ctx, ServerContext):
            return None
        try:
            key = await state.admin_auth.verify(token)
            if not key.role.allows(fast.role):
                return None
            request = fast.model.model_validate(_json_body(scope, body))
            prepared = await fast.prepare(ctx.caller, ref, request, scope["state"]["request_id"])
        except Exception:  # answered by the ordinary path, the same way as ever
            return None
        return ctx, prepared


def _json_body(scope: Scope, body: bytes) -> Any:
    """The body as FastAPI parses it for the call routes (`json_body.JsonAnyTypeRoute`): with
    Python's json (orjson reads integers past 64 bits as floats), under a JSON Content-Type,
    or under any other when orjson can read it; ValueError otherwise."""
    content_type = next((v for k, v in scope["headers"] if k == b"content-type"), b"")
    if not is_json_type(content_type.decode("latin-1")):
        orjson.loads(body)
    return json.loads(body)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """`receive` giving back the messages already read first."""
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay


async def _handled(scope: Scope, exc: Exception) -> Any:
    """The app's exception handler's answer to `exc` (Starlette's lookup: the nearest class in
    its MRO); what no handler takes goes on to `RequestMiddleware`'s last resort."""
    handlers = scope["app"].exception_handlers
    for cls in type(exc).__mro__:
        handler = handlers.get(cls)
        if handler is not None and cls is not Exception:
            answer = handler(Request(scope), exc)
            return await answer if inspect.isawaitable(answer) else answer
    raise exc
