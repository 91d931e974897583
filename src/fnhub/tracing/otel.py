"""The spans, made with the OpenTelemetry SDK (the `otel` extra); imported only when tracing is
on (`fnhub.tracing.configure`).

One trace per trigger: an HTTP request (server span), a subscription's message (consumer span,
ended when the message is settled) or a cron tick, continuing the caller's or the message's own
`traceparent` when it brings one; under it one `enqueue` producer span per task, whose context
travels in `Task.trace` as a W3C `traceparent`; the worker's `run` span is that span's child
(attributes: function, task id, attempt, status, queue wait), and a rule's output goes out in a
`publish` span under the message's span, carrying that span's `traceparent`. Spans of the
"file" setting are written as JSON lines, a file per process, as soon as they end
(`JsonLinesExporter`).
"""

from __future__ import annotations

import atexit
import os
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.trace import Span, SpanKind, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from fnhub.tasks import Status, Task, TaskResult

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from fnhub.config import Settings

_propagator = TraceContextTextMapPropagator()
#: statuses of a message or task that are not an error of the span
_FINE = frozenset({Status.SUCCESS, Status.RETRYING, Status.SKIPPED, "filtered"})


def traceparent(span: Span) -> str:
    """The W3C `traceparent` naming `span` (what `Task.trace` carries)."""
    ctx = span.get_span_context()
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"


def context_of(traceparent: str | None) -> Context | None:
    """The context a `traceparent` names; None (the current context) when there is none."""
    if not traceparent:
        return None
    return _propagator.extract({"traceparent": traceparent})


def context_in(headers: Mapping[str, bytes]) -> Context:
    """The trace context a broker message carries (`traceparent`, and `tracestate`, as headers,
    MQTT 5 user properties or stream fields); an empty context, the start of a new trace,
    when it carries none or an invalid one."""
    raw = headers.get("traceparent")
    if not raw:
        return Context()
    carrier = {"traceparent": raw.decode("latin-1")}
    state = headers.get("tracestate")
    if state:
        carrier["tracestate"] = state.decode("latin-1")
    return _propagator.extract(carrier, context=Context())


def span_record(span: ReadableSpan) -> dict[str, Any]:
    """One span as the "file" setting writes it: ids in hex, times in ns since the epoch."""
    ctx = span.context
    parent = span.parent
    return {
        "name": span.name,
        "kind": span.kind.name,
        "trace_id": f"{ctx.trace_id:032x}" if ctx else None,
        "span_id": f"{ctx.span_id:016x}" if ctx else None,
        "parent_id": f"{parent.span_id:016x}" if parent else None,
        "start": span.start_time,
        "end": span.end_time,
        "status": span.status.status_code.name,
        "status_message": span.status.description,
        "attributes": dict(span.attributes or {}),
        "resource": dict(span.resource.attributes),
    }


class JsonLinesExporter(SpanExporter):
    """Spans as JSON lines in `<folder>/spans-<pid>.jsonl`, appended whole (one write per
    export), so readers see complete lines and processes never share a file."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self._fd: int | None = None
        self._pid = 0  # whose file `_fd` is: a forked copy of this process opens its own

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        data = b"".join(orjson.dumps(span_record(s), default=str) + b"\n" for s in spans)
        pid = os.getpid()
        if self._fd is None or self._pid != pid:
            path = self.folder / f"spans-{pid}.jsonl"
            self._fd, self._pid = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND), pid
        os.write(self._fd, data)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None and self._pid == os.getpid():
            os.close(fd)


class Hooks:
    """What the rest of fnhub calls to make spans (through `fnhub.tracing.hooks`)."""

    def __init__(self, provider: TracerProvider) -> None:
        self.provider = provider
        self.tracer = provider.get_tracer("fnhub")

    @classmethod
    def create(cls, settings: Settings, role: str) -> Hooks:
        attributes: dict[str, str] = {"fnhub.role": role}
        if not os.environ.get("OTEL_SERVICE_NAME"):
            attributes["service.name"] = "fnhub"
        provider = TracerProvider(resource=Resource.create(attributes))
        if settings.tracing == "otlp":
            # endpoint, headers, timeout...: the standard OTEL_EXPORTER_OTLP_* variables
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        else:
            folder = Path(settings.tracing_dir or settings.data_dir / "traces")
            provider.add_span_processor(SimpleSpanProcessor(JsonLinesExporter(folder)))
        if role == "worker":
            # spans a function makes with the OpenTelemetry API nest under its task's `run`
            # span. Only there: elsewhere a global provider would switch on the libraries'
            # own spans (FastAPI >= 0.165 makes a second server span per request)
            trace.set_tracer_provider(provider)
        atexit.register(provider.shutdown)
        return cls(provider)

    def shutdown(self) -> None:
        self.provider.shutdown()

    # -- the queue ----------------------------------------------------------------------------
    def enqueue(self, task: Task, parent: Span | None = None) -> None:
        """A producer span for `task` (under `parent`, else the current span), named in the
        task for the worker's span. It ends at once: it marks the task's creation."""
        context = trace.set_span_in_context(parent) if parent is not None else None
        span = self.tracer.start_span(
            f"enqueue {task.function}",
            context=context,
            kind=SpanKind.PRODUCER,
            attributes={
                "messaging.system": "fnhub",
                "messaging.operation.type": "create",
                "messaging.destination.name": task.queue,
                "fnhub.function": task.function,
                "fnhub.task_id": task.id,
                "fnhub.origin": task.origin,
            },
        )
        task.trace = traceparent(span)
        span.end()

    def run(self, task: Task, run: Callable[[Task], TaskResult]) -> TaskResult:
        """`run(task)` inside the task's `run` span, the current span while it runs."""
        start = time.time()
        span = self.tracer.start_span(
            f"run {task.function}",
            context=context_of(task.trace),
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": "fnhub",
                "messaging.operation.type": "process",
                "messaging.destination.name": task.queue,
                "fnhub.function": task.function,
                "fnhub.task_id": task.id,
                "fnhub.attempt": task.attempt,
                "fnhub.origin": task.origin,
                "fnhub.queue_wait_seconds": max(start - task.trigger_time, 0.0),
            },
        )
        token = otel_context.attach(trace.set_span_in_context(span))
        try:
            result = run(task)
        except BaseException as exc:
            span.record_exception(exc)
            span.set_status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}")
            raise
        finally:
            otel_context.detach(token)
        span.set_attribute("fnhub.status", result.status)
        if result.error_type:
            span.set_attribute("error.type", result.error_type)
        if result.status not in _FINE:
            span.set_status(StatusCode.ERROR, f"{result.error_type}: {result.error_message}")
        span.end()
        return result

    # -- triggers -----------------------------------------------------------------------------
    def receive(
        self, subscription: str, system: str, topic: str, headers: Mapping[str, bytes]
    ) -> Span:
        """A message of a subscription, ended by `settle`: a child of the trace context the
        message carries in its `headers` (`context_in`), else a new trace."""
        return self.tracer.start_span(
            f"{subscription} receive",
            context=context_in(headers),
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": system,
                "messaging.operation.type": "receive",
                "messaging.destination.name": topic,
                "fnhub.subscription": subscription,
            },
        )

    def settle(self, span: Span, status: str, error: str | None = None) -> None:
        """The message is done (its output published, if any) and acknowledged."""
        span.set_attribute("fnhub.status", status)
        if status not in _FINE:
            span.set_status(StatusCode.ERROR, error)
        span.end()

    async def publish(
        self, parent: Span, system: str, topic: str, send: Callable[[str], Awaitable[None]]
    ) -> None:
        """`send(traceparent)` (a rule's output, retried until the broker took it) in a
        producer span, which `traceparent` names for the output message to carry."""
        span = self.tracer.start_span(
            f"{topic} publish",
            context=trace.set_span_in_context(parent),
            kind=SpanKind.PRODUCER,
            attributes={
                "messaging.system": system,
                "messaging.operation.type": "send",
                "messaging.destination.name": topic,
            },
        )
        try:
            await send(traceparent(span))
        except BaseException as exc:
            span.record_exception(exc)
            span.set_status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}")
            raise
        finally:
            span.end()

    def cron_tick(self, job: str, tick: int, tasks: list[Task]) -> None:
        """A cron job's tick: a new trace, one `enqueue` span under it per task."""
        span = self.tracer.start_span(
            f"cron {job}",
            context=Context(),
            kind=SpanKind.PRODUCER,
            attributes={"fnhub.cron.job": job, "fnhub.cron.tick": tick},
        )
        for task in tasks:
            self.enqueue(task, span)
        span.end()


class HttpSpans:
    """ASGI middleware: a server span per HTTP request (under the caller's `traceparent`, if it
    sent one), current while the request is handled, so the tasks it enqueues join its trace.
    Named by the matched route's template (`POST /api/v1/functions/{ref}/call`), never the
    path."""

    def __init__(self, app: ASGIApp, tracer: trace.Tracer) -> None:
        self.app = app
        self.tracer = tracer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        from fnhub.server.middleware import route_template

        carrier = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in scope["headers"]
            if name in (b"traceparent", b"tracestate")
        }
        method: str = scope["method"]
        span = self.tracer.start_span(
            method,
            context=_propagator.extract(carrier) if carrier else None,
            kind=SpanKind.SERVER,
            attributes={"http.request.method": method, "url.path": scope["path"]},
        )
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        token = otel_context.attach(trace.set_span_in_context(span))
        try:
            await self.app(scope, receive, send_status)
        except BaseException as exc:
            span.record_exception(exc)
            raise
        finally:
            otel_context.detach(token)
            route = route_template(scope)
            span.update_name(f"{method} {route}")
            span.set_attribute("http.route", route)
            span.set_attribute("http.response.status_code", status)
            if status >= 500:
                span.set_status(StatusCode.ERROR)
            span.end()
