"""A message's W3C trace context through a broker and back: published with the options the
connector type's `carry_trace` makes, read by the broker's source into `Message.headers`, and
made the parent of the subscription's `receive` span (spans from the SDK's in-memory exporter)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from fnhub.connectors import Message, create_source, each, get_type
from fnhub.connectors.pool import close_async_publishers, get_async_publisher
from fnhub.tracing.otel import Hooks

from .conftest import SHARED_REDIS_URL, Recorder, wait_for


async def _through(kind: str, settings: dict[str, Any], topic: str, options: dict) -> Message:
    """Publish one message carrying a new traceparent; the message the source reads."""
    source = create_source(
        kind, settings, topics=[topic], window=10, group="g", client_id="c1", options=options
    )
    rec = Recorder()
    runner = asyncio.create_task(source.run(each(rec)))
    try:
        await wait_for(lambda: source.status.state == "connected", 20, "connected")
        publish = get_type(kind).publish_options(
            {"kind": "stream"} if kind == "redis" else {"options": {}}
        )
        publish = get_type(kind).carry_trace(publish, TRACEPARENT, settings)
        publisher = await get_async_publisher(f"trace-{kind}", kind, settings)
        await publisher.publish(topic, b"traced", **publish)
        await wait_for(lambda: rec.messages, 20, "the message")
    finally:
        await source.stop()
        await runner
        await close_async_publishers()
    [msg] = rec.messages
    assert isinstance(msg, Message)
    return msg


TRACE_ID, SPAN_ID = uuid.uuid4().hex, uuid.uuid4().hex[:16]
TRACEPARENT = f"00-{TRACE_ID}-{SPAN_ID}-01"


def _hooks() -> tuple[Hooks, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return Hooks(provider), exporter


@pytest.mark.parametrize("kind", ["kafka", "redis"])
async def test_the_trace_context_crosses_the_broker_into_the_receive_span(
    kind: str, conn_broker_factory, conn_prefix, conn_redis_cleanup
) -> None:
    if kind == "kafka":
        tansu = conn_broker_factory("tansu")
        settings: dict[str, Any] = {"bootstrap_servers": f"127.0.0.1:{tansu.port}"}
        msg = await _through(kind, settings, "traced", {"assignment": "manual"})
    else:
        settings = {"url": SHARED_REDIS_URL}
        msg = await _through(kind, settings, conn_prefix + "s", {"kind": "stream", "start": "0"})
    assert msg.payload == b"traced"
    assert msg.headers["traceparent"] == TRACEPARENT.encode()

    hooks, exporter = _hooks()
    hooks.settle(hooks.receive("sub", kind, msg.topic, msg.headers), "success")
    [span] = exporter.get_finished_spans()
    assert span.context is not None and span.parent is not None
    assert f"{span.context.trace_id:032x}" == TRACE_ID
    assert f"{span.parent.span_id:016x}" == SPAN_ID


def test_a_message_without_a_valid_traceparent_starts_a_new_trace() -> None:
    hooks, exporter = _hooks()
    for headers in ({}, {"traceparent": b"not a traceparent"}, {"other": b"x"}):
        hooks.settle(hooks.receive("sub", "mqtt", "t", headers), "success")
    spans = exporter.get_finished_spans()
    assert len(spans) == 3 and all(s.parent is None for s in spans)
    assert len({s.context.trace_id for s in spans if s.context is not None}) == 3


def test_carry_trace_keeps_the_rules_own_headers_and_properties() -> None:
    tp = TRACEPARENT
    kafka = get_type("kafka").carry_trace({"headers": {"k": "v"}}, tp, {})
    assert kafka["headers"] == {"k": "v", "traceparent": tp}
    mqtt = get_type("mqtt")
    props = {"properties": {"user_properties": {"a": "1"}, "content_type": "text/plain"}}
    out = mqtt.carry_trace(props, tp, {"host": "h"})
    assert out["properties"] == {
        "user_properties": [("a", "1"), ("traceparent", tp)],
        "content_type": "text/plain",
    }
    assert mqtt.carry_trace({"qos": 1}, tp, {"host": "h", "protocol": "3.1.1"}) == {"qos": 1}
    redis = get_type("redis")
    assert redis.carry_trace({"kind": "pubsub"}, tp, {}) == {"kind": "pubsub"}
    assert redis.carry_trace({"kind": "stream"}, tp, {})["headers"] == {"traceparent": tp}
    for kind in ("nats", "rabbitmq"):
        assert get_type(kind).carry_trace({}, tp, {}) == {"headers": {"traceparent": tp}}
