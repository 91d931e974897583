"""Tracing's switch and wire format: off imports no OpenTelemetry, `Task.trace` keeps the
msgpack encoding compatible both ways, `tracing: otlp` reaches a collector over OTLP/HTTP, and a
cron tick's tasks carry their `enqueue` span."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import msgspec
import pytest
from tests.conftest import free_port
from tests.spans import read_spans

from fnhub import tasks, tracing
from fnhub.config import Settings

#: a process in which the `otel` extra's packages cannot be imported, as where it is not
#: installed (`opentelemetry-api` is FastAPI's own dependency since 0.165: always there)
NO_OTEL = """
import sys

class NoOtel:
    def find_spec(self, name, path=None, target=None):
        if name.startswith(("opentelemetry.sdk", "opentelemetry.exporter")):
            raise ImportError(f"blocked: {name}")
        return None

sys.meta_path.insert(0, NoOtel())
"""


def _python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env or None
    )


def test_tracing_off_imports_no_opentelemetry_and_on_without_it_says_what_to_install() -> None:
    code = (
        NO_OTEL
        + """
from fnhub import tracing
from fnhub.config import Settings
import fnhub.worker.child, fnhub.subscriptions.runner, fnhub.cron.beat, fnhub.cli
from fnhub.server.app import create_app

create_app(Settings(redis_url="redis://127.0.0.1:6379/0"))
tracing.configure(Settings(), "worker")
assert tracing.hooks is None
# (FastAPI and redis-py import parts of `opentelemetry-api` themselves when it is there)
prefixes = ("opentelemetry.sdk", "opentelemetry.exporter", "fnhub.tracing.")
loaded = sorted(m for m in sys.modules if m.startswith(prefixes))
assert not loaded, loaded
tracing.check(Settings())
try:
    tracing.configure(Settings(tracing="otlp"), "worker")
except tracing.TracingUnavailable as exc:
    print(exc)
else:
    raise AssertionError("configured without OpenTelemetry")
try:
    tracing.check(Settings(tracing="file"))  # a worker supervisor's, before its children
except tracing.TracingUnavailable as exc:
    print(exc)
else:
    raise AssertionError("checked without OpenTelemetry")
"""
    )
    done = _python(code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("pip install 'fnhub[otel]'") == 2


class _OldTask(msgspec.Struct, kw_only=True, omit_defaults=True):
    """`Task` as versions before `trace` defined it (the fields that matter here)."""

    id: str
    function: str
    attempt: int = 1
    meta: dict[str, object] = {}


def test_task_trace_field_keeps_the_encoding_compatible() -> None:
    plain = tasks.Task(id="t1", function="a.b")
    assert b"trace" not in tasks.encode(plain)  # off: not a byte more on the wire
    traced = tasks.Task(id="t1", function="a.b", trace="00-" + "1" * 32 + "-" + "2" * 16 + "-01")
    old = msgspec.msgpack.decode(tasks.encode(traced), type=_OldTask)  # an older worker
    assert (old.id, old.function) == ("t1", "a.b")
    from_old = tasks.decode_task(msgspec.msgpack.encode(_OldTask(id="t2", function="c.d")))
    assert from_old.trace is None and from_old.function == "c.d"
    again = tasks.decode_task(tasks.encode(msgspec.structs.replace(traced, attempt=2)))
    assert again.trace == traced.trace  # a retry stays in the trace


class _Collector(BaseHTTPRequestHandler):
    bodies: list[tuple[str, bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.bodies.append((self.path, body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[tuple[int, list[tuple[str, bytes]]]]:
    port = free_port()
    bodies: list[tuple[str, bytes]] = []
    handler = type("Collector", (_Collector,), {"bodies": bodies})
    server = HTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield port, bodies
    server.shutdown()
    server.server_close()


def test_otlp_setting_exports_spans_to_the_collector_the_otel_variables_name(
    collector: tuple[int, list[tuple[str, bytes]]],
) -> None:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    port, bodies = collector
    code = """
from fnhub import tracing
from fnhub.config import Settings
from fnhub.tasks import Status, Task, result_for

tracing.configure(Settings(tracing="otlp"), "worker")
task = Task(function="m.f")
tracing.hooks.enqueue(task)
tracing.hooks.run(task, lambda t: result_for(t, Status.SUCCESS))
tracing.shutdown()  # flushes the batch
"""
    env = {
        **{k: v for k, v in __import__("os").environ.items() if not k.startswith("OTEL_")},
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}",
        "OTEL_SERVICE_NAME": "fnhub-test",
    }
    done = _python(code, **env)
    assert done.returncode == 0, done.stderr
    assert bodies and all(path == "/v1/traces" for path, _ in bodies)
    spans = {}
    for _, body in bodies:
        request = ExportTraceServiceRequest.FromString(body)
        for resource_spans in request.resource_spans:
            attrs = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            assert attrs["service.name"] == "fnhub-test" and attrs["fnhub.role"] == "worker"
            for scope in resource_spans.scope_spans:
                spans.update({s.name: s for s in scope.spans})
    assert set(spans) == {"enqueue m.f", "run m.f"}
    assert spans["run m.f"].parent_span_id == spans["enqueue m.f"].span_id
    assert spans["run m.f"].trace_id == spans["enqueue m.f"].trace_id


@pytest.fixture
def file_tracing(tmp_path: Path) -> Iterator[Path]:
    """Tracing on in this process (`tracing: file`), off again after the test."""
    folder = tmp_path / "traces"
    assert tracing.hooks is None
    tracing.configure(Settings(tracing="file", tracing_dir=str(folder)), "beat")
    yield folder
    tracing.shutdown()


async def test_cron_tick_is_a_trace_whose_tasks_carry_their_enqueue_span(
    file_tracing: Path, tmp_path: Path
) -> None:
    from tests.cron.conftest import (
        SCRIPT,
        add_job,
        make_settings,
        queued,
        running_beat,
        wait_for,
        wipe,
    )

    from fnhub.bootstrap import open_services

    settings = make_settings(tmp_path)
    services = open_services(settings)
    try:
        services.scripts.publish({"jobs": SCRIPT})
        add_job(services, id="every", function="jobs.tick", expr="* * * * * *", overlap="allow")
        async with running_beat(settings, services) as beat:
            await wait_for(lambda: beat.stats.fired >= 2, 6)
        fired = queued(services)
    finally:
        services.close()
        wipe(settings)
    spans = {s["span_id"]: s for s in read_spans(file_tracing)}
    assert len(fired) >= 2
    for task in fired:
        assert task.trace is not None
        _, trace_id, span_id, _ = task.trace.split("-")
        enqueue = spans[span_id]
        assert enqueue["name"] == "enqueue jobs.tick" and enqueue["trace_id"] == trace_id
        assert enqueue["attributes"]["fnhub.task_id"] == task.id
        tick = spans[enqueue["parent_id"]]
        assert tick["name"] == "cron every" and tick["parent_id"] is None
        assert tick["attributes"]["fnhub.cron.tick"] == task.meta["cron"]["tick"]
    assert len({task.trace.split("-")[1] for task in fired if task.trace}) == len(fired)
