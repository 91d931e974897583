"""MQTT source and publishers against a private mosquitto (QoS 1, persistent sessions)."""

from __future__ import annotations

import asyncio
import signal
import socket
import threading
import time

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from fnhub.connectors import (
    ConnectorError,
    create_source,
    each,
    get_async_publisher,
    get_publisher,
)
from fnhub.connectors.pool import close_async_publishers, close_publisher

from .conftest import Broker, Recorder, free_port, wait_for


def _raw_client(port: int, client_id: str = "") -> paho.Client:
    c = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5)
    c.max_inflight_messages_set(1000)
    c.max_queued_messages_set(0)
    c.connect("127.0.0.1", port)
    c.loop_start()
    return c


def _publish_all(port: int, topic: str, payloads: list[bytes], qos: int = 1) -> None:
    """Publish as fast as paho allows and wait until the broker acked every message."""
    c = _raw_client(port)
    infos = [c.publish(topic, p, qos=qos) for p in payloads]
    for info in infos:
        info.wait_for_publish(30)
    c.disconnect()
    c.loop_stop()


def _source(port: int, topics: list[str], *, window: int, client_id: str = "sub-1", **options):
    return create_source(
        "mqtt",
        {"host": "127.0.0.1", "port": port},
        topics=topics,
        window=window,
        group=None,
        client_id=client_id,
        options=options,
    )


async def test_burst_qos1_every_message_once_window_held(conn_mosquitto):
    port = conn_mosquitto.port
    n, window = 20_000, 100
    source = _source(port, ["burst/#"], window=window)
    rec = Recorder(delay=0.001)
    runner = asyncio.create_task(source.run(each(rec)))
    await wait_for(lambda: source.status.state == "connected", 10, "connected")
    t0 = time.monotonic()
    payloads = [str(i).encode() for i in range(n)]
    pub = asyncio.create_task(asyncio.to_thread(_publish_all, port, "burst/a", payloads))
    await wait_for(lambda: source.status.acked == n, 55, f"{n} acked")
    took = time.monotonic() - t0
    await pub
    await source.stop()
    await runner
    assert len(rec.seen) == n and set(rec.seen) == set(payloads)  # all, none twice
    assert rec.max_running <= window and source.status.max_in_flight <= window
    assert source.status.dropped == 0
    assert all(m.qos == 1 and m.topic == "burst/a" for m in rec.messages[:10])
    print(
        f"\nmqtt burst: {n} QoS 1 in {took:.2f}s ({n / took:.0f} msg/s end to end), "
        f"max in flight {rec.max_running}"
    )


async def test_killed_connection_redelivers_unacked_to_same_identity(conn_mosquitto):
    """Kill the subscriber's TCP connection (no DISCONNECT) with unacked messages; a new source
    with the same client id gets them again from the persistent session, none missing."""
    port = conn_mosquitto.port
    n = 300
    first = _source(port, ["r/#"], window=20, drain_timeout=0.2)
    rec1 = Recorder()
    rec1.hold_after = 100
    runner = asyncio.create_task(first.run(each(rec1)))
    await wait_for(lambda: first.status.state == "connected", 10, "connected")
    payloads = [str(i).encode() for i in range(n)]
    await asyncio.to_thread(_publish_all, port, "r/x", payloads)
    # a burst can fill the window for a moment too: held means 100 handled and 20 waiting
    await wait_for(
        lambda: len(rec1.seen) == 100 and first.status.in_flight == 20,
        10,
        "window full of held handlers",
    )
    sock = first._client.socket()
    sock.shutdown(socket.SHUT_RDWR)  # the process "dies": no DISCONNECT, no PUBACK
    await first.stop()
    await runner
    assert first.status.acked == 100

    second = _source(port, ["r/#"], window=20)
    rec2 = Recorder()
    runner = asyncio.create_task(second.run(each(rec2)))
    await wait_for(lambda: len(set(rec1.seen) | set(rec2.seen)) == n, 20, "all received")
    await second.stop()
    await runner
    assert set(rec1.seen) | set(rec2.seen) == set(payloads)
    assert any(m.redelivered for m in rec2.messages)


async def test_reconnect_after_connection_loss_keeps_flowing(conn_mosquitto):
    """The same source reconnects by itself; unacked messages come back on the new connection
    and copies of messages still being handled are acked once, not handled twice."""
    port = conn_mosquitto.port
    n = 400
    source = _source(port, ["k/#"], window=50)
    rec = Recorder(delay=0.005)
    runner = asyncio.create_task(source.run(each(rec)))
    await wait_for(lambda: source.status.state == "connected", 10, "connected")
    pub = asyncio.create_task(
        asyncio.to_thread(_publish_all, port, "k/x", [str(i).encode() for i in range(n)])
    )
    await wait_for(lambda: len(rec.seen) >= 100, 20, "some handled")
    source._client.socket().shutdown(socket.SHUT_RDWR)
    await wait_for(lambda: source.status.state == "reconnecting", 10, "noticed the loss")
    assert source.status.last_error
    await wait_for(lambda: len(set(rec.seen)) == n, 30, "all handled after reconnect")
    await pub
    await source.stop()
    await runner
    assert set(rec.seen) == {str(i).encode() for i in range(n)}


async def test_broker_down_at_start(conn_broker_factory):
    broker = conn_broker_factory("mosquitto", start=False)
    source = _source(broker.port, ["d/#"], window=5)
    rec = Recorder()
    runner = asyncio.create_task(source.run(each(rec)))
    await wait_for(lambda: source.status.last_error is not None, 10, "an error")
    assert source.status.state == "reconnecting"
    assert "refused" in source.status.last_error.lower()
    broker.start()
    await wait_for(lambda: source.status.state == "connected", 20, "connected")
    await asyncio.to_thread(_publish_all, broker.port, "d/1", [b"\xff\x00\xfebin"])
    await wait_for(lambda: len(rec.seen) == 1, 10, "message")
    assert rec.seen == [b"\xff\x00\xfebin"]  # binary payload unchanged
    await source.stop()
    await runner


async def test_shared_subscription_splits_without_duplicates(conn_mosquitto):
    port = conn_mosquitto.port
    n = 400
    a = _source(port, ["s/#"], window=10, client_id="node-a", share_group="grp")
    b = _source(port, ["$share/grp/s/#"], window=10, client_id="node-b")
    rec_a, rec_b = Recorder(), Recorder()
    tasks = [asyncio.create_task(a.run(each(rec_a))), asyncio.create_task(b.run(each(rec_b)))]
    await wait_for(lambda: a.status.state == b.status.state == "connected", 10, "connected")
    payloads = [str(i).encode() for i in range(n)]
    await asyncio.to_thread(_publish_all, port, "s/t", payloads)
    await wait_for(lambda: len(rec_a.seen) + len(rec_b.seen) == n, 20, "all")
    await a.stop()
    await b.stop()
    await asyncio.gather(*tasks)
    assert sorted(rec_a.seen + rec_b.seen) == sorted(payloads)
    assert rec_a.seen and rec_b.seen


async def test_qos0_overflow_is_counted(conn_mosquitto):
    port = conn_mosquitto.port
    n = 2000
    source = _source(port, ["z/#"], window=2, qos=0, buffer=50)
    rec = Recorder(delay=0.005)
    runner = asyncio.create_task(source.run(each(rec)))
    await wait_for(lambda: source.status.state == "connected", 10, "connected")
    await asyncio.to_thread(_publish_all, port, "z/1", [str(i).encode() for i in range(n)], 0)
    st = source.status
    await wait_for(lambda: len(rec.seen) + st.dropped == n, 20, "handled + dropped")
    await source.stop()
    await runner
    assert st.dropped > 0 and rec.max_running <= 2


def _collect(port: int, topic: str, n: int, out: list[paho.MQTTMessage]) -> paho.Client:
    got, subscribed = threading.Event(), threading.Event()
    c = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
    c.on_subscribe = lambda *_a: subscribed.set()

    def on_message(_c, _u, m):  # type: ignore[no-untyped-def]
        out.append(m)
        if len(out) >= n:
            got.set()

    c.on_message = on_message
    c.connect("127.0.0.1", port)
    c.subscribe(topic, qos=1)
    c.loop_start()
    c.got = got  # type: ignore[attr-defined]
    assert subscribed.wait(10)
    return c


async def test_publishers_read_back(conn_mosquitto):
    port = conn_mosquitto.port
    settings = {"host": "127.0.0.1", "port": port}
    out: list[paho.MQTTMessage] = []
    reader = await asyncio.to_thread(_collect, port, "out/#", 4, out)
    pub = get_publisher("m1", "mqtt", settings)
    assert get_publisher("m1", "mqtt", settings) is pub
    pub.publish(
        "out/a",
        {"x": 1},
        qos=1,
        properties={"content_type": "application/json", "user_properties": {"k": "v"}},
    )
    pub.publish("out/b", b"\x00\xff", qos=2)
    apub = await get_async_publisher("m1", "mqtt", settings)
    await apub.publish("out/c", "text", qos=1)
    await apub.publish("out/d", [1, 2], qos=0)
    assert await asyncio.to_thread(reader.got.wait, 10)
    reader.disconnect()
    reader.loop_stop()
    by_topic = {m.topic: m for m in out}
    assert by_topic["out/a"].payload == b'{"x":1}'
    assert by_topic["out/a"].properties.ContentType == "application/json"
    assert by_topic["out/a"].properties.UserProperty == [("k", "v")]
    assert by_topic["out/b"].payload == b"\x00\xff"
    assert by_topic["out/c"].payload == b"text"
    assert by_topic["out/d"].payload == b"[1,2]"
    close_publisher("m1")
    await close_async_publishers()


async def test_publisher_dead_port():
    with pytest.raises(ConnectorError, match="cannot connect to MQTT broker"):
        get_publisher("m-dead", "mqtt", {"host": "127.0.0.1", "port": free_port()})


async def test_mqtt311_persistent_session_resumes(conn_mosquitto):
    port = conn_mosquitto.port
    settings = {"host": "127.0.0.1", "port": port, "protocol": "3.1.1"}

    def make(**options):
        return create_source(
            "mqtt",
            settings,
            topics=["v3/#"],
            window=10,
            group=None,
            client_id="v3-sub",
            options=options,
        )

    first = make(drain_timeout=0.1)
    rec1 = Recorder()
    rec1.hold_after = 20
    runner = asyncio.create_task(first.run(each(rec1)))
    await wait_for(lambda: first.status.state == "connected", 10, "connected")
    payloads = [str(i).encode() for i in range(100)]
    await asyncio.to_thread(_publish_all, port, "v3/a", payloads)
    await wait_for(lambda: first.status.in_flight == 10, 10, "window full of held handlers")
    first._client.socket().shutdown(socket.SHUT_RDWR)
    await first.stop()
    await runner
    second = make()
    rec2 = Recorder()
    runner = asyncio.create_task(second.run(each(rec2)))
    await wait_for(lambda: set(rec1.seen) | set(rec2.seen) == set(payloads), 20, "all")
    await second.stop()
    await runner


async def test_async_publish_without_acknowledgement_times_out(conn_mosquitto):
    settings = {"host": "127.0.0.1", "port": conn_mosquitto.port}
    pub = await get_async_publisher("m-frozen", "mqtt", settings)
    await pub.publish("t/x", b"before", qos=1)
    conn_mosquitto.proc.send_signal(signal.SIGSTOP)  # alive, connected, answering nothing
    try:
        started = time.monotonic()
        with pytest.raises(ConnectorError, match=r"no acknowledgement within 0\.5s"):
            await pub.publish("t/x", b"lost?", qos=1, timeout=0.5)
        assert time.monotonic() - started < 3
    finally:
        conn_mosquitto.proc.send_signal(signal.SIGCONT)
    await pub.publish("t/x", b"after", qos=1)  # the same connection works again


async def test_properties_headers_and_qos2_reach_the_handler(conn_mosquitto):
    """QoS 0/1 go through the source's own PUBLISH decoding, QoS 2 through paho's: both carry
    topic, payload, user properties and content type into the message, and all are acked."""
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    port = conn_mosquitto.port
    source = _source(port, ["props/#"], window=10, qos=2)
    rec = Recorder()
    runner = asyncio.create_task(source.run(each(rec)))
    await wait_for(lambda: source.status.state == "connected", 10, "connected")
    c = _raw_client(port)
    props = Properties(PacketTypes.PUBLISH)
    props.UserProperty = [("k", "v"), ("k2", "w")]
    props.ContentType = "text/plain"
    infos = [c.publish(f"props/q{q}", f"p{q}".encode(), qos=q, properties=props) for q in range(3)]
    infos.append(c.publish("props/bare", b"", qos=1))  # no properties, empty payload
    for info in infos:
        info.wait_for_publish(10)
    await wait_for(lambda: source.status.acked == 4, 10, "4 acked")
    c.disconnect()
    c.loop_stop()
    await source.stop()
    await runner
    by_topic = {m.topic: m for m in rec.messages}
    assert sorted(by_topic) == ["props/bare", "props/q0", "props/q1", "props/q2"]
    for q in range(3):
        m = by_topic[f"props/q{q}"]
        assert (m.payload, m.qos) == (f"p{q}".encode(), q)
        assert m.headers == {"k": b"v", "k2": b"w", "content-type": b"text/plain"}
    bare = by_topic["props/bare"]
    assert (bare.payload, bare.qos, bare.headers, bare.redelivered) == (b"", 1, {}, False)


@pytest.mark.parametrize(
    "packet",
    [
        b"\x00",  # topic length cut short
        b"\x00\x09ab",  # topic longer than the packet
        b"\x00\x02ab\x00",  # packet id cut short
        b"\x00\x02ab\x00\x07",  # no property length
        b"\x00\x02ab\x00\x07\x05\x26\x00",  # property length past the packet
        b"\x00\x02ab\x00\x07\x02\x63\x00",  # unknown property id 0x63
    ],
)
def test_malformed_publish_is_a_protocol_error(packet):
    """A broken PUBLISH raises paho's MalformedPacket (paho then closes the connection and the
    broker redelivers) instead of an arbitrary exception in the network thread."""
    from paho.mqtt.exception import MalformedPacket

    from fnhub.connectors.mqtt.received import decode_publish

    with pytest.raises(MalformedPacket):
        decode_publish(0x32, bytearray(packet), paho.MQTTv5)


def test_decode_matches_paho_for_mqtt311_and_5():
    """The source's decoding gives what paho's own does, with and without properties."""
    from paho.mqtt import _packet
    from paho.mqtt.exception import MalformedPacket

    from fnhub.connectors.mqtt.received import decode_publish

    cases = [
        (0x32, b"\x00\x03a/b\x12\x34\x00payload", paho.MQTTv5),
        (0x3A, b"\x00\x03a/b\x12\x34\x0b\x26\x00\x01k\x00\x01v\x03\x00\x01tx", paho.MQTTv5),
        (0x30, b"\x00\x01t\x00", paho.MQTTv5),  # QoS 0: no packet id
        (0x32, b"\x00\x03a/b\x00\x01rest", paho.MQTTv311),
    ]
    for header, raw, protocol in cases:
        ours = decode_publish(header, bytearray(raw), protocol)
        theirs = _packet.decode_publish(header, bytearray(raw), protocol)
        assert (ours.topic.encode(), ours.mid, ours.qos, ours.dup, ours.payload) == (
            theirs.topic,
            theirs.mid,
            theirs.qos,
            theirs.dup,
            bytes(theirs.payload),
        )
        if theirs.properties is not None and theirs.properties.json():
            assert ours.properties is not None
            assert ours.properties.json() == theirs.properties.json()
        else:
            assert ours.properties is None
    with pytest.raises(MalformedPacket):  # MQTT 3.1.1 has no empty topics
        decode_publish(0x32, bytearray(b"\x00\x00\x00\x01x"), paho.MQTTv311)


async def test_burst_over_tls_every_message_once(tmp_path):
    """The source's own network loop over TLS (SSL sockets raise want-read/want-write where
    plain ones block, and keep decrypted bytes where select cannot see them): a QoS 1 burst
    arrives whole, once, acked."""
    import os
    import shutil
    import ssl
    import subprocess

    if not shutil.which("mosquitto") or not shutil.which("openssl"):
        pytest.skip("mosquitto or openssl not installed")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
         "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    port = free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        f"certfile {cert}\nkeyfile {key}\nmax_inflight_messages 1000\nmax_queued_messages 0\n"
        # no queue limit: by default Mosquitto drops QoS 1 messages for a client more than 1,000
        # behind (on this machine the publisher's burst outran the subscriber by that, and the
        # broker dropped them: "Outgoing messages are being dropped for client tls-sub")
        # as root, mosquitto would read the key as its own user, which cannot enter tmp_path
        + ("user root\n" if os.geteuid() == 0 else "")
    )
    broker = Broker("mosquitto-tls", lambda: ["mosquitto", "-c", str(conf)], port, tmp_path)
    broker.start()
    try:
        n, window = 3000, 200
        source = create_source(
            "mqtt",
            {"host": "127.0.0.1", "port": port, "tls": {"insecure": True}},
            topics=["tls/#"],
            window=window,
            group=None,
            client_id="tls-sub",
            options={},
        )
        rec = Recorder()
        runner = asyncio.create_task(source.run(each(rec)))
        await wait_for(lambda: source.status.state == "connected", 10, "connected")

        def publish() -> None:
            c = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
            ctx = ssl.create_default_context()
            ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
            c.tls_set_context(ctx)
            c.max_inflight_messages_set(1000)
            c.connect("127.0.0.1", port)
            c.loop_start()
            infos = [c.publish("tls/a", str(i).encode(), qos=1) for i in range(n)]
            for info in infos:
                info.wait_for_publish(30)
            c.disconnect()
            c.loop_stop()

        await asyncio.to_thread(publish)
        await wait_for(lambda: source.status.acked == n, 30, f"{n} acked over TLS")
        await source.stop()
        await runner
        assert len(rec.seen) == n and set(rec.seen) == {str(i).encode() for i in range(n)}
        assert rec.max_running <= window
    finally:
        broker.stop()


class _CountingSocket:
    """A socket pair's end whose `recv` calls are counted."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.recvs, self.sends = sock, 0, 0

    def recv(self, n: int) -> bytes:
        self.recvs += 1
        return self.sock.recv(n)

    def send(self, data: bytes) -> int:
        self.sends += 1
        return self.sock.send(data)

    def close(self) -> None:
        self.sock.close()


def _publish_packet(topic: str, mid: int, payload: bytes) -> bytes:
    """A QoS 1 MQTT 5 PUBLISH without properties."""
    body = len(topic).to_bytes(2, "big") + topic.encode() + mid.to_bytes(2, "big") + b"\0"
    body += payload
    n, length = len(body), b""
    while True:
        n, digit = divmod(n, 128)
        length += bytes([digit | (128 if n else 0)])
        if not n:
            return b"\x32" + length + body


def _read_all(client) -> None:
    from paho.mqtt.enums import MQTTErrorCode

    while client._packet_read() == MQTTErrorCode.MQTT_ERR_SUCCESS:
        pass


def test_receiving_client_reads_many_packets_per_recv():
    """paho reads a packet's first byte, its length bytes and its body apart, a recv each;
    ReceivingClient serves those reads from one recv of what the socket holds, packets cut
    between two recvs included, and a new socket (a reconnection) starts afresh."""
    from fnhub.connectors.mqtt.received import ReceivingClient

    a, b = socket.socketpair()
    a.setblocking(False)
    client = ReceivingClient(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
    client.manual_ack_set(True)
    got: list = []
    client.on_received = got.append
    counting = _CountingSocket(a)
    client._sock = counting
    big = b"x" * 300  # two bytes of remaining length
    packets = [_publish_packet("t/a", i + 1, big if i % 7 == 0 else b"m%d" % i) for i in range(50)]
    b.sendall(b"".join(packets))
    _read_all(client)
    assert [(m.topic, m.mid) for m in got] == [("t/a", i + 1) for i in range(50)]
    assert [m.payload for m in got][:2] == [big, b"m1"]
    assert counting.recvs <= 3  # the data, then nothing more (paho: 150 and more)
    assert not client.buffered()

    cut = _publish_packet("t/b", 99, b"tail")
    b.sendall(cut[:5])  # a packet cut in two
    _read_all(client)
    assert len(got) == 50
    b.sendall(cut[5:] + _publish_packet("t/b", 100, b"next"))
    _read_all(client)
    assert [(m.topic, m.mid, m.payload) for m in got[50:]] == [
        ("t/b", 99, b"tail"),
        ("t/b", 100, b"next"),
    ]

    b.sendall(_publish_packet("t/c", 1, b"old") * 2)
    client._read, client._read_at = b"", 0
    counting.sock.setblocking(False)
    assert client._sock_recv(1) == b"\x32"  # one byte handed out, the rest kept
    assert client.buffered()
    c, d = socket.socketpair()
    c.setblocking(False)
    client._sock = c  # reconnected: what the old socket left is not the new one's
    assert not client.buffered()
    d.sendall(b"\x40")
    assert client._sock_recv(1) == b"\x40"
    for s in (a, b, c, d):
        s.close()


def test_receiving_client_writes_a_batch_of_pubacks_at_once():
    """A settled batch's PUBACKs leave in one send (paho: one each), in order, and whatever
    follows them (another kind of packet) after."""
    from fnhub.connectors.mqtt.netloop import no_op
    from fnhub.connectors.mqtt.received import ReceivingClient

    a, b = socket.socketpair()
    client = ReceivingClient(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
    client.manual_ack_set(True)
    client.on_socket_register_write = no_op  # queued, as the network thread's owner does
    counting = _CountingSocket(a)
    client._sock = counting
    for mid in range(1, 51):
        client.ack(mid, 1)
    client._send_pingreq()
    assert client.loop_write() == paho.MQTT_ERR_SUCCESS
    expected = b"".join(b"\x40\x02" + mid.to_bytes(2, "big") for mid in range(1, 51))
    data = b""
    while len(data) < len(expected) + 2:
        data += b.recv(4096)
    assert data == expected + b"\xc0\x00"
    assert counting.sends == 2
    a.close()
    b.close()
