"""DataFlux Func's call URLs beside fnhub's own API, so its callers keep their URLs.

- `POST /api/v1/func/<funcId>` `{kwargs, options: {async, eta, delay, unbox, returnType,
  timeout, queue}}` and `POST /api/v1/func-many` `{calls: [...]}` (always queued): under
  `/api/v1`, behind fnhub's authentication (API keys, sessions) like the rest of the API;
  `funcId` is `script.func` or DataFlux Func's `set__script.func`.
- The published-API URLs `/api/v1/sync/<id>` and `/api/v1/async/<id>` (GET with
  `?kwargs=<json>&options=<json>`, or POST), and their `/simplified` (`/s`) forms whose whole
  query or body is the kwargs: `<id>` names an fnhub endpoint (`/e/<id>`), called with the
  endpoint's own auth, throttle, fixed kwargs and cache (`server.endpoints`).

Answers use DataFlux Func's envelope (`fnhub.dff.envelope`), errors included, except where
fnhub keeps its correct behaviour: falsy results stay what they are, and a queued task's
result can be read (`data.url`). docs/dff.md, "Call URLs".
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import orjson
from fastapi import APIRouter, Request
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from fnhub.calling.errors import CallError
from fnhub.dff.envelope import (
    DFFError,
    Trace,
    error_response,
    from_api_error,
    from_outcome,
    ok,
    stamp,
)
from fnhub.server import redaction, request_kwargs, throttle
from fnhub.server.context import context_of
from fnhub.server.endpoints import (
    LiveEndpoint,
    call_endpoint_task,
    make_endpoint_task,
    open_endpoint,
    submit_endpoint_task,
)
from fnhub.server.errors import (
    DATABASE_UNAVAILABLE,
    REDIS_UNAVAILABLE,
    RETRY_AFTER_SECONDS,
    ApiError,
)
from fnhub.server.render import is_response, json_response, render_value
from fnhub.tasks import Origin, Status

log = logging.getLogger(__name__)
RETURN_TYPES = ("raw", "jsonDumps")
#: the most calls one `func-many` request may queue
MAX_CALLS = 1000


class DFFRoute(APIRoute):
    """A route answering in DataFlux Func's envelope whatever happens: fnhub's refusals raised
    by the handler or its dependencies (authentication included), an outage, a bug."""

    #: a published API's own auth refused the caller (`EAPIAuth`), not the management API's
    api_auth = False

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        api_auth = self.api_auth

        async def handle(request: Request) -> Response:
            trace = Trace.of(request)
            request.state.dff_trace = trace
            try:
                return stamp(await handler(request), trace)
            except DFFError as exc:
                error = exc
            except (ApiError, CallError) as exc:
                error = from_api_error(exc, api_auth=api_auth)
            except REDIS_UNAVAILABLE + DATABASE_UNAVAILABLE as exc:
                service = "Redis" if isinstance(exc, REDIS_UNAVAILABLE) else "the database"
                error = DFFError(
                    "ESysNetwork",
                    f"{service} is unavailable ({type(exc).__name__}); retry later",
                    headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
                )
            except StarletteHTTPException as exc:
                code = "EClientNotFound" if exc.status_code == 404 else "EClientBadRequest"
                error = DFFError(code, str(exc.detail))
            except Exception as exc:
                request_id = str(getattr(request.state, "request_id", ""))
                log.error("request %s failed", request_id, exc_info=exc)
                error = DFFError("ESys", "internal error", {"request_id": request_id})
            return error_response(trace, error)

        return handle


class PublishedRoute(DFFRoute):
    api_auth = True


# Left out of the OpenAPI document, which describes fnhub's API and its error shape
# (`ErrorBody`): these answer in DataFlux Func's envelope, with its statuses (599, a role that
# may not call is 401), and are described in docs/dff.md.
api_router = APIRouter(route_class=DFFRoute, include_in_schema=False)
public_router = APIRouter(prefix="/api/v1", route_class=PublishedRoute, include_in_schema=False)


# -- reading a call ------------------------------------------------------------------------


def _json(text: str | bytes, what: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise DFFError(
            "EClientBadRequest", f"Invalid {what}, bad JSON format", {"error": str(exc)}
        ) from None


def _is_form(request: Request) -> bool:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return media == "application/x-www-form-urlencoded"


def call_body(request: Request, body: bytes) -> dict[str, Any]:
    """`{kwargs, options}` from a JSON body (under any Content-Type), or a form whose
    `kwargs` and `options` fields hold JSON, as DataFlux Func reads them."""
    if not body.strip():
        return {}
    if _is_form(request) and not body.lstrip().startswith(b"{"):
        data: Any = dict(parse_qsl(body.decode("latin-1"), keep_blank_values=True))
    else:
        data = _json(body, "request body")
    if not isinstance(data, dict):
        raise DFFError("EClientBadRequest", "Invalid request body, a JSON object is expected")
    return data


def kwargs_and_options(data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The call's `kwargs` and `options` (each may also be sent as a JSON string)."""
    kwargs = data.get("kwargs")
    options = data.get("options")
    if isinstance(kwargs, str):
        kwargs = _json(kwargs, "kwargs")
    if isinstance(options, str):
        options = _json(options, "options")
    if kwargs is None:
        kwargs = {}
    if options is None:
        options = {}
    if not isinstance(kwargs, dict):
        raise DFFError("EClientBadRequest", "Invalid kwargs, a JSON object is expected")
    if not isinstance(options, dict):
        raise DFFError("EClientBadRequest", "Invalid options, a JSON object is expected")
    return kwargs, options


@dataclass(frozen=True, slots=True)
class Options:
    """DataFlux Func's call options, checked."""

    is_async: bool = False
    eta: float | None = None  # epoch seconds (from `eta`, or `delay` from now)
    unbox: bool | None = None  # None: the URL's default
    return_type: str = "raw"
    timeout: float | None = None
    queue: str | None = None


def _bad_option(name: str, detail: dict[str, Any] | None = None) -> DFFError:
    return DFFError("EClientBadRequest", f"Invalid options, invalid {name}", detail)


def _eta(value: Any) -> float:
    """ISO 8601 (a time without a zone is UTC) or epoch seconds."""
    if isinstance(value, bool):
        raise _bad_option("eta")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise _bad_option("eta", {"eta": value}) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.timestamp()
    raise _bad_option("eta")


def parse_options(raw: dict[str, Any]) -> Options:
    return_type = raw.get("returnType") or "raw"
    if return_type not in RETURN_TYPES:
        raise _bad_option("returnType", {"allowed": list(RETURN_TYPES)})
    eta = None
    if raw.get("eta") is not None:
        eta = _eta(raw["eta"])
    elif raw.get("delay"):
        delay = raw["delay"]
        if isinstance(delay, bool) or not isinstance(delay, int | float) or delay < 0:
            raise _bad_option("delay", {"delay": delay})
        eta = time.time() + delay
    timeout = raw.get("timeout")
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0
    ):
        raise _bad_option("timeout", {"timeout": timeout})
    queue = raw.get("queue")
    if queue is not None:
        if isinstance(queue, int) and not isinstance(queue, bool):
            queue = f"q{queue}"  # DataFlux Func's queue N is fnhub's queue qN (as @DFF.API)
        elif not isinstance(queue, str) or not queue:
            raise _bad_option("queue", {"queue": queue})
    unbox = raw.get("unbox")
    return Options(
        is_async=bool(raw.get("async")),
        eta=eta,
        unbox=None if unbox is None else bool(unbox),
        return_type=return_type,
        timeout=float(timeout) if timeout is not None else None,
        queue=queue,
    )


def _no_eta_when_waiting(options: Options) -> None:
    if options.eta is not None:
        raise DFFError(
            "EClientBadRequest",
            "Invalid options, eta and delay need an async call (options.async, or /async/)",
        )


# -- answering -----------------------------------------------------------------------------


def answer(
    trace: Trace, value: Any, options: Options, *, unbox: bool, headers: dict[str, str]
) -> Response:
    """A result as DataFlux Func sends it: in the envelope as `data.result`, or unboxed as the
    body itself (a string as text, anything else as JSON; `0`, `false`, `""` as they are).
    `returnType: jsonDumps` makes the result its JSON text first. A shaped response
    (`DFF.RESP`, `fnhub.Response`) is sent as it asked, as DataFlux Func does."""
    if is_response(value):
        return stamp(render_value(value, headers), trace)
    if options.return_type == "jsonDumps":
        value = orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    if options.unbox if options.unbox is not None else unbox:
        if isinstance(value, str):
            media = "application/json" if options.return_type == "jsonDumps" else "text/plain"
            return stamp(Response(value, headers=headers, media_type=media), trace)
        return stamp(json_response(value, headers=headers), trace)
    return ok(trace, {"result": value}, headers)


def _http_meta(request: Request) -> dict[str, Any]:
    """The trigger's request as `fnhub.context.meta["http"]` (and `_DFF_HTTP_REQUEST`) have it,
    credentials redacted."""
    names = redaction.name_set(context_of(request).settings.redact_names)
    return {
        "method": request.method,
        "path": request.url.path,
        "client": request.client.host if request.client else None,
        "headers": redaction.redacted_headers(request.headers.items(), names),
    }


def _task_url(task_id: str) -> str:
    return f"/api/v1/tasks/{task_id}"


# -- POST /api/v1/func/<funcId>, /api/v1/func-many ----------------------------------------


@api_router.post("/func/{func_id}", response_model=None)
async def call_func(request: Request, func_id: str) -> Response:
    """DataFlux Func's direct call: wait for the result (`data.result`, or the raw result with
    `unbox`), or queue it with `options.async` (`data.id`; read it at `data.url`)."""
    trace: Trace = request.state.dff_trace
    kwargs, raw = kwargs_and_options(call_body(request, await request.body()))
    options = parse_options(raw)
    caller = context_of(request).caller
    task = await caller.make(
        func_id,
        kwargs,
        origin=Origin.API,
        timeout=options.timeout,
        queue=options.queue,
        reply_to=caller.reply_stream,
        meta={"request_id": request.state.request_id, "http": _http_meta(request)},
    )
    if options.is_async:
        if options.eta is not None and task.expires_at is not None:
            task.expires_at = max(
                task.expires_at, options.eta + (task.expires_at - task.trigger_time)
            )
        task.status_key = caller.keys.task_status(task.id)
        await caller.submit(task, eta=options.eta)
        url = _task_url(task.id)
        return ok(trace, {"id": task.id, "url": url}, {"Location": url})
    _no_eta_when_waiting(options)
    task.expires_at = task.trigger_time + task.timeout + 5.0
    result = await caller.call(task)
    if result.status != Status.SUCCESS:
        raise from_outcome(result)
    return answer(trace, result.result, options, unbox=False, headers={"X-Task-Id": result.id})


@api_router.post("/func-many", response_model=None)
async def call_func_many(request: Request) -> Response:
    """DataFlux Func's batch of queued calls `{calls: [{funcId, kwargs, options: {eta,
    delay}}]}` → `data.ids`. Every call is checked before any is queued: one refused call
    refuses the request (its index in `detail`)."""
    trace: Trace = request.state.dff_trace
    calls = call_body(request, await request.body()).get("calls")
    if not isinstance(calls, list):
        raise DFFError("EClientBadRequest", "Invalid request body, `calls` must be a list")
    if len(calls) > MAX_CALLS:
        raise DFFError("EClientBadRequest", f"Too many calls: at most {MAX_CALLS} per request")
    caller = context_of(request).caller
    meta = {"request_id": request.state.request_id, "http": _http_meta(request)}
    tasks = []
    for i, call in enumerate(calls):
        try:
            if not isinstance(call, dict) or not isinstance(call.get("funcId"), str):
                raise DFFError("EClientBadRequest", "Invalid call, `funcId` is required")
            kwargs, raw = kwargs_and_options(call)
            options = parse_options(raw)
            task = await caller.make(
                call["funcId"],
                kwargs,
                origin=Origin.API,
                timeout=options.timeout,
                queue=options.queue,
                meta=meta,
            )
        except (ApiError, CallError) as exc:
            error = from_api_error(exc)
            error.detail = {**error.detail, "index": i}
            raise error from None
        except DFFError as exc:
            exc.detail = {**(exc.detail or {}), "index": i}
            raise
        tasks.append((task, options.eta))
    for queue in {task.queue for task, _eta in tasks}:  # refused before any is queued
        await caller.check_capacity(queue)
    for task, eta in tasks:
        if eta is not None and task.expires_at is not None:
            task.expires_at = max(task.expires_at, eta + (task.expires_at - task.trigger_time))
        task.status_key = caller.keys.task_status(task.id)
        await caller.submit(task, eta=eta)
    ids = [task.id for task, _eta in tasks]
    return ok(trace, {"ids": ids, "urls": [_task_url(i) for i in ids]})


# -- the published APIs: /api/v1/sync/<id>, /api/v1/async/<id> ------------------------------

FORMATS = ("simplified", "s")
_TITLES = {"sync": "Sync API", "async": "Async API"}
#: an endpoint's conditions, in DataFlux Func's words (`EBizCondition.SyncAPIDisabled`...)
_CONDITIONS = {"endpoint_disabled": "disabled", "endpoint_expired": "expired"}


def _structured(media: str, body: bytes) -> bool:
    """Whether fnhub's endpoints read this body as fields (JSON, form, multipart)."""
    if media == "application/json" or media.endswith("+json"):
        return True
    if media in ("application/x-www-form-urlencoded", "multipart/form-data"):
        return True
    return not media and body.lstrip().startswith(b"{")


async def simplified_kwargs(request: Request, body: bytes, ep: LiveEndpoint) -> dict[str, Any]:
    """The whole query string and body as kwargs, as fnhub's endpoints read them, except a
    text body, which is `text` (a str), and any other unstructured one, `base64` (a str), as
    in DataFlux Func."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if not body or _structured(media, body):
        return await request_kwargs.from_request(request, body, ep.credential_query)
    given = await request_kwargs.from_request(request, b"", ep.credential_query)
    if media.startswith("text/"):
        try:
            given["text"] = body.decode()
        except UnicodeDecodeError:
            raise DFFError("EClientBadRequest", "a text body must be UTF-8") from None
    else:
        given["base64"] = base64.b64encode(body).decode()
    return given


async def _published(request: Request, mode: str, api_id: str, fmt: str | None) -> Response:
    trace: Trace = request.state.dff_trace
    title = _TITLES[mode]
    if fmt is not None and fmt not in FORMATS:
        raise DFFError(
            "EClientNotFound", f"No such format '{fmt}'", {"allowed": [*FORMATS, "(none)"]}
        )
    ctx = context_of(request)
    try:
        ep, body = await open_endpoint(request, api_id)
    except ApiError as exc:
        state = _CONDITIONS.get(exc.code)
        if state is None:
            raise
        reason = f"EBizCondition.{title.replace(' ', '')}{state.title()}"  # ...SyncAPIDisabled
        raise DFFError(
            reason, f"This {title} is {state}", {"id": api_id, "code": exc.code}
        ) from None
    if ep.mode != mode:
        raise DFFError(
            "EClientNotFound",
            f"No such {title}: endpoint '{api_id}' is {ep.mode}, call /api/v1/{ep.mode}/{api_id}",
            {"id": api_id},
        )
    await throttle.check(ctx.redis, ctx.keys, ep.name, ep.throttle)
    if fmt is not None:
        given = await simplified_kwargs(request, body, ep)
        options = Options()
    else:
        if request.method == "GET":
            data: dict[str, Any] = dict(request.query_params)
        else:
            data = call_body(request, body)
        given, raw = kwargs_and_options(data)
        options = parse_options(raw)
    kwargs = request_kwargs.merge(ep.kwargs, given)
    task = await make_endpoint_task(request, ep, kwargs)
    if mode == "async":
        await submit_endpoint_task(ctx, task, eta=options.eta)
        url = f"/e/{ep.name}/tasks/{task.id}"
        return ok(trace, {"id": task.id, "url": url}, {"Location": url})
    _no_eta_when_waiting(options)
    outcome = await call_endpoint_task(ctx, ep, task, kwargs)
    if outcome.result is not None and outcome.result.status != Status.SUCCESS:
        raise from_outcome(outcome.result, traceback=ep.show_traceback)
    return answer(trace, outcome.value, options, unbox=True, headers=outcome.headers)


def _mount(mode: str, segment: str) -> None:
    """The URLs `/api/v1/<segment>/<id>[/<format>[/...]]` of a published API of `mode`."""

    async def plain(request: Request, api_id: str) -> Response:
        return await _published(request, mode, api_id, None)

    async def formatted(request: Request, api_id: str, fmt: str) -> Response:
        return await _published(request, mode, api_id, fmt)

    async def formatted_path(request: Request, api_id: str, fmt: str, rest: str) -> Response:
        return await _published(request, mode, api_id, fmt)

    title = _TITLES[mode]
    for method in ("GET", "POST"):  # one route per method: each has its own operation id
        public_router.add_api_route(
            f"/{segment}/{{api_id}}",
            plain,
            methods=[method],
            response_model=None,
            summary=f"Call a {title} (an fnhub endpoint) the DataFlux Func way",
            name=f"dff_{segment}_{method.lower()}",
        )
        public_router.add_api_route(
            f"/{segment}/{{api_id}}/{{fmt}}",
            formatted,
            methods=[method],
            response_model=None,
            summary=f"Call a {title}: the whole query or body is the kwargs",
            name=f"dff_{segment}_simplified_{method.lower()}",
        )
        public_router.add_api_route(
            f"/{segment}/{{api_id}}/{{fmt}}/{{rest:path}}",
            formatted_path,
            methods=[method],
            response_model=None,
            name=f"dff_{segment}_simplified_path_{method.lower()}",
        )


_mount("sync", "sync")
_mount("async", "async")
# DataFlux Func's names before 5.0, still answered there: Auth Links and Batches
_mount("sync", "al")
_mount("async", "bat")
