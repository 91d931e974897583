"""JSON bodies sent without `Content-Type: application/json`.

`curl -d '{...}'` labels its body `application/x-www-form-urlencoded`, and many HTTP libraries
send none at all; FastAPI then hands the route the raw bytes and answers "Input should be a
valid dictionary", which sends people looking for the wrong mistake. So:

- the call routes (`JsonAnyTypeRoute`: `POST /functions/{ref}/call` and `/tasks`) take a body
  that parses as JSON whatever its Content-Type says (endpoints do the same for no type and the
  form type, in `request_kwargs`);
- every other route refuses a body sent with another type with 415 `unsupported_media_type`,
  a message naming the header (`install`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.responses import Response
from starlette.types import Message, Scope

from fnhub.server.errors import error_response

JSON = b"application/json"


def is_json_type(content_type: str) -> bool:
    media = content_type.split(";")[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def _content_type(scope: Scope) -> str:
    name: bytes
    value: bytes
    for name, value in scope["headers"]:
        if name == b"content-type":
            return value.decode("latin-1")
    return ""


def _parses(body: bytes) -> bool:
    try:
        orjson.loads(body)
    except orjson.JSONDecodeError:
        return False
    return True


class JsonAnyTypeRoute(APIRoute):
    """A route whose JSON body may come under any Content-Type (or none): one that parses as
    JSON is handed on as `application/json`; one that does not is refused like elsewhere."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            if is_json_type(_content_type(request.scope)):
                return await handler(request)
            body = await request.body()
            if not body or not _parses(body):
                return await handler(request)
            headers = [(k, v) for k, v in request.scope["headers"] if k != b"content-type"]
            scope = {**request.scope, "headers": [*headers, (b"content-type", JSON)]}
            sent = False

            async def replay() -> Message:  # the body, already read from the client
                nonlocal sent
                if sent:
                    return await request.receive()  # a disconnect, when it comes
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}

            return await handler(Request(scope, replay))

        return handle


def _refused_for_its_type(request: Request, exc: RequestValidationError) -> str | None:
    """The request's Content-Type when its body failed validation because it was not parsed
    as JSON (FastAPI parses JSON types only, and hands the model the raw bytes otherwise)."""
    content_type = request.headers.get("content-type", "")
    if is_json_type(content_type):
        return None
    for e in exc.errors():
        if tuple(e.get("loc", ())) == ("body",) and isinstance(e.get("input"), bytes):
            return content_type
    return None


def install(app: FastAPI) -> None:
    """Wrap the installed validation-error handler (`errors.install` first): a body sent with
    another Content-Type gets 415 naming the header instead of "Input should be a valid
    dictionary"."""
    inner = app.exception_handlers[RequestValidationError]

    async def handle(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        content_type = _refused_for_its_type(request, exc)
        if content_type is None:
            answer = inner(request, exc)
            return await answer if inspect.isawaitable(answer) else answer
        sent = f"Content-Type {content_type!r}" if content_type else "no Content-Type"
        return error_response(
            415,
            "unsupported_media_type",
            f"the body must be JSON sent with the header Content-Type: application/json "
            f"(this request had {sent})",
        )

    app.add_exception_handler(RequestValidationError, handle)
    _document(app)


def _document(app: FastAPI) -> None:
    """List the 415 answer in the OpenAPI document of every route that takes a JSON body."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = generate()
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                if set(operation.get("requestBody", {}).get("content", {})) == {"application/json"}:
                    operation.setdefault("responses", {}).setdefault("415", _ANSWER_415)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI documents this override


_ANSWER_415 = {
    "description": "unsupported_media_type: the body was not sent as application/json",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
}
