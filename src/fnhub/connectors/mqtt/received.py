"""Decoding received QoS 0/1 PUBLISH packets without paho's per-message objects.

Profiling `fnhub server` during an MQTT burst put about half of the source's network thread in
paho's `_handle_publish`: for every MQTT 5 message it builds a `Properties` object (dozens of
dict entries and list look-ups) and clears it attribute by attribute even when the packet carries
no property at all, wraps the message in an `MQTTMessage` whose `MQTTMessageInfo` creates a
`threading.Condition` (meant for tracking outgoing publishes), matches the topic against
per-filter callbacks and formats a debug line. `ReceivingClient` overrides that one method for
QoS 0 and 1: it reads the topic, packet id and payload straight from the packet, lets paho parse
properties only when there are some, and hands a small `Received` to `on_received`. QoS 2 (with
its PUBREC/PUBREL state) stays on paho's own code and reaches `on_message` as before.

The override rests on paho 2.x internals (`_handle_publish`, `_in_packet`, `_protocol`): the
package requires paho-mqtt 2.x, and tests/connectors/test_mqtt.py runs the source through it.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import NamedTuple

import paho.mqtt.client as paho
from paho.mqtt.enums import MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.exception import MalformedPacket, MQTTException
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties


class Received(NamedTuple):
    """One PUBLISH as the source needs it."""

    topic: str
    payload: bytes
    qos: int
    mid: int
    dup: bool
    properties: Properties | None


_PUBACK = PacketTypes.PUBACK << 4  # a PUBACK packet's first byte
#: bytes taken off the socket per `recv` at most (`ReceivingClient._sock_recv`)
READ_BYTES = 65536


class ReceivingClient(paho.Client):
    """A paho client whose QoS 0/1 PUBLISHes go to `on_received` as `Received` tuples, read
    from the socket a buffer at a time: paho asks for a packet's first byte, each byte of its
    length and then the rest, a `recv` system call each (three or more per PUBLISH); here one
    `recv` takes whatever the socket holds (up to `READ_BYTES`) and paho's reads are served
    from it. Whoever runs the client's loop must read on while `buffered()` says bytes are
    waiting here, where select() cannot see them (`netloop.serve_connection` does)."""

    on_received: Callable[[Received], None] | None = None
    _read: bytes = b""  # taken off the socket, not yet handed to paho from `_read_at` on
    _read_at = 0
    _read_sock: object = None  # the socket `_read` came from (a reconnection drops the rest)

    def _sock_recv(self, bufsize: int) -> bytes:
        at, data = self._read_at, self._read
        if at >= len(data) or self._read_sock is not self._sock:
            data = super()._sock_recv(max(bufsize, READ_BYTES))  # BlockingIOError if none
            self._read, self._read_at, self._read_sock = data, 0, self._sock
            if len(data) <= bufsize:  # all of it (b"": the connection ended)
                self._read_at = len(data)
                return data
            at = 0
        self._read_at = end = at + bufsize
        return data[at:end]

    def buffered(self) -> bool:
        """Whether bytes read off the socket wait for paho here."""
        return self._read_at < len(self._read) and self._read_sock is self._sock

    def _packet_write(self) -> MQTTErrorCode:
        """paho's, with the PUBACKs queued one after another (a settled batch's) joined into
        one write: paho sends each queued packet with a `send` of its own."""
        out = self._out_packet
        if len(out) > 1 and out[0]["command"] == _PUBACK and out[0]["pos"] == 0:
            acks = []
            while out and out[0]["command"] == _PUBACK and out[0]["pos"] == 0:
                acks.append(out.popleft()["packet"])
            data = b"".join(acks)
            out.appendleft(
                {"command": _PUBACK, "mid": 0, "qos": 1, "pos": 0, "to_process": len(data),
                 "packet": data, "info": None}
            )  # fmt: skip
        return super()._packet_write()

    def _handle_publish(self) -> MQTTErrorCode:
        header: int = self._in_packet["command"]
        qos = (header & 0x06) >> 1
        on_received = self.on_received
        if qos == 2 or on_received is None:
            return super()._handle_publish()
        received = decode_publish(header, self._in_packet["packet"], self._protocol)
        on_received(received)
        if qos == 1 and not self._manual_ack:
            return self._send_puback(received.mid)
        return MQTTErrorCode.MQTT_ERR_SUCCESS


def decode_publish(header: int, packet: bytes | bytearray, protocol: int) -> Received:
    """A QoS 0/1 PUBLISH from its first header byte and the bytes after the remaining length.

    Raises MalformedPacket, which paho turns into a protocol error (the connection is closed and
    the broker redelivers what was not acknowledged)."""
    qos = (header & 0x06) >> 1
    size = len(packet)
    try:
        end = 2 + ((packet[0] << 8) | packet[1])
        if end > size:
            raise MalformedPacket("topic longer than the packet")
        # brokers check topics are UTF-8; an invalid one must not stop the connection's reads
        topic = packet[2:end].decode("utf-8", "replace")
        if not topic and protocol != MQTTProtocolVersion.MQTTv5:
            raise MalformedPacket("topic can't be empty in MQTTv3")
        mid = 0
        if qos:
            if end + 2 > size:
                raise MalformedPacket("packet id missing")
            mid = (packet[end] << 8) | packet[end + 1]
            end += 2
        properties = None
        if protocol == MQTTProtocolVersion.MQTTv5:
            if packet[end] == 0:  # no properties: the common case, nothing to build
                end += 1
            else:
                properties = Properties(PacketTypes.PUBLISH)
                _props, used = properties.unpack(packet[end:])
                end += used
        payload = bytes(memoryview(packet)[end:])
    except (IndexError, ValueError, KeyError, struct.error, MQTTException) as exc:
        if isinstance(exc, MalformedPacket):
            raise
        raise MalformedPacket(f"bad PUBLISH packet: {exc}") from exc
    return Received(topic, payload, qos, mid, bool(header & 0x08), properties)


def headers_of(props: Properties) -> dict[str, bytes]:
    """A PUBLISH's user properties (and its content type) as a message's headers."""
    headers: dict[str, bytes] = {}
    for k, v in getattr(props, "UserProperty", []) or []:
        headers[k] = v.encode() if isinstance(v, str) else bytes(v)
    ct = getattr(props, "ContentType", None)
    if ct:
        headers.setdefault("content-type", ct.encode())
    return headers
