"""MQTT source and publishers on paho-mqtt 2.x (MQTT 5 by default, 3.1.1 on request).

The source holds a persistent session (clean_start False, a session expiry and a stable client
id), subscribes with QoS 1 by default and acks manually after the handler: the broker redelivers
whatever was not acked when a server dies. MQTT 5 `ReceiveMaximum` = window makes the broker stop
sending QoS >= 1 messages while the window is full. QoS 0 messages cannot be pushed back; they
wait in a bounded buffer whose overflow is counted in `status.dropped`.

paho runs its network loop in a private thread (one per source or publisher); callbacks are
bridged to asyncio with `call_soon_threadsafe`. Writes from other threads only queue packets and
wake that thread, so one thread owns the socket. The source's thread runs its own loop on paho's
public API (`netloop.py`: `loop_read`/`loop_write`/`loop_misc` around its own select): it reads
up to 64 PUBLISHes per wake-up where paho's `loop()` reads one, and the PUBACKs of a settled
batch are queued together and wake it once, where paho writes a wake-up byte per ack.

`direct.py` is the consumer of a worker child that holds the subscription itself (`path:
direct`, `single` mode): the same session, decoding and loop, PUBACKs after the batch.

The source's client decodes QoS 0/1 PUBLISHes itself (`received.py`): paho's own decoding builds
objects per message that cost more CPU than the rest of the message's path in the server.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from fnhub.connectors.base import (
    TRACEPARENT,
    ConnectorError,
    ConnectorType,
    SourceArgs,
    parse_model,
)
from fnhub.connectors.mqtt.settings import MqttSettings, MqttSourceOptions

if TYPE_CHECKING:  # the driver: imported when a source or publisher is made, not by every server
    from fnhub.connectors.mqtt.direct import MqttDirectConsumer
    from fnhub.connectors.mqtt.publisher import AsyncMqttPublisher, MqttPublisher
    from fnhub.connectors.mqtt.source import MqttSource


def create_source(
    settings: MqttSettings,
    *,
    topics: list[str],
    window: int,
    group: str | None,
    client_id: str,
    options: dict[str, Any],
) -> MqttSource:
    from fnhub.connectors.mqtt.source import MqttSource

    opts = parse_model(MqttSourceOptions, options, "mqtt source options")
    return MqttSource(settings, topics=topics, window=window, client_id=client_id, options=opts)


async def test_connection(settings: MqttSettings, timeout: float) -> None:
    from fnhub.connectors.mqtt.publisher import PahoPublisher

    s = settings.model_copy(update={"connect_timeout": timeout})

    def probe() -> None:
        core = PahoPublisher(s)
        core.start()
        core.close()

    try:
        await asyncio.wait_for(asyncio.to_thread(probe), timeout + 1)
    except TimeoutError:
        raise ConnectorError(
            f"MQTT broker {s.host}:{s.port}: no answer within {timeout}s"
        ) from None


def _publisher(settings: MqttSettings) -> MqttPublisher:
    from fnhub.connectors.mqtt.publisher import MqttPublisher

    return MqttPublisher(settings)


def _direct(*args: Any, **kwargs: Any) -> MqttDirectConsumer:
    from fnhub.connectors.mqtt.direct import MqttDirectConsumer

    return MqttDirectConsumer(*args, **kwargs)


async def _open_async(settings: MqttSettings) -> AsyncMqttPublisher:
    from fnhub.connectors.mqtt.publisher import AsyncMqttPublisher

    return await AsyncMqttPublisher.open(settings)


def topic_matches(topic_filter: str, topic: str) -> bool:
    """MQTT filters: `+` one level, `#` the rest; a `$share/<group>/` prefix is not a level."""
    if topic_filter.startswith("$share/"):
        topic_filter = topic_filter.split("/", 2)[2] if topic_filter.count("/") >= 2 else ""
    f_parts, t_parts = topic_filter.split("/"), topic.split("/")
    for i, part in enumerate(f_parts):
        if part == "#":
            return True
        if i >= len(t_parts) or (part != "+" and part != t_parts[i]):
            return False
    return len(f_parts) == len(t_parts)


def source_args(args: SourceArgs) -> SourceArgs:
    """`multiple` mode is an MQTT 5 shared subscription (`$share/<share_group>/<filter>`, built
    by the source): each message goes to one of the servers."""
    if args.mode == "multiple":
        share = args.options.get("share_group") or f"fnhub-{args.subscription}"
        args.options["share_group"] = share
    return args


def publish_options(target: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "qos": target.get("qos", 1),
        "retain": bool(target.get("retain")),
        **(target.get("options") or {}),
    }


def carry_trace(
    options: dict[str, Any], traceparent: str, settings: Mapping[str, Any]
) -> dict[str, Any]:
    """MQTT 5: the trace context as a user property (3.1.1 messages have no properties)."""
    if str(settings.get("protocol", "5")) != "5":
        return options
    properties = dict(options.get("properties") or {})
    user = properties.get("user_properties") or []
    pairs = list(user.items()) if isinstance(user, Mapping) else list(user)
    pairs = [(k, v) for k, v in pairs if k != TRACEPARENT]
    properties["user_properties"] = [*pairs, (TRACEPARENT, traceparent)]
    return {**options, "properties": properties}


test_connection.__test__ = False  # type: ignore[attr-defined]  # not a pytest test when imported

TYPE = ConnectorType(
    name="mqtt",
    settings_model=MqttSettings,
    source_options=MqttSourceOptions,
    create_source=create_source,
    test_connection=test_connection,
    create_publisher=_publisher,
    create_async_publisher=_open_async,
    topic_matches=topic_matches,
    source_args=source_args,
    publish_options=publish_options,
    carry_trace=carry_trace,
    create_direct_consumer=_direct,
    direct_one_child=True,
)
