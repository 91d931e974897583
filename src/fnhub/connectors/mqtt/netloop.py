"""One MQTT connection's network loop on paho's public API, for a thread that owns the socket.

paho's `loop()` reads one packet per select (`loop_read` ignores its packet count), so this
loop reads on while packets keep coming: up to `READS_PER_WAKE` PUBLISHes per wake-up. Other
threads queue packets (PUBACKs) and wake it once per batch through a socket pair of its own,
where paho's `loop()` would take a wake-up byte per packet. The server's source and a worker
child's direct consumer both run it. A `ReceivingClient` holds bytes it read off the socket
that select() cannot see: the loop reads on without waiting while it does.
"""

from __future__ import annotations

import contextlib
import select
import socket
from collections.abc import Callable

import paho.mqtt.client as paho
from paho.mqtt.enums import MQTTErrorCode

from fnhub.connectors.mqtt.received import ReceivingClient

#: PUBLISHes read per wake-up of the network thread at most, so writes and keepalive get a turn
READS_PER_WAKE = 64


def serve_connection(
    client: paho.Client, wake: socket.socket, received: Callable[[], int]
) -> MQTTErrorCode:
    """Run the connection until it ends; its end code. `received()` counts the PUBLISHes
    read so far (a read that adds none ends the burst); `wake` is readable when packets were
    queued by another thread."""
    ok = MQTTErrorCode.MQTT_ERR_SUCCESS
    while True:
        sock = client.socket()
        if sock is None:
            return MQTTErrorCode.MQTT_ERR_CONN_LOST
        pending = getattr(sock, "pending", None)  # TLS: bytes decrypted but not yet read
        buffered = pending is not None and pending() > 0
        if not buffered and isinstance(client, ReceivingClient):  # read off the socket
            buffered = client.buffered()
        wlist = [sock] if client.want_write() else []
        try:
            readable, _w, _x = select.select([sock, wake], wlist, [], 0 if buffered else 0.5)
        except (OSError, ValueError, TypeError):  # the socket was closed under us
            return MQTTErrorCode.MQTT_ERR_CONN_LOST
        if wake in readable:
            with contextlib.suppress(BlockingIOError):
                wake.recv(4096)
        if buffered or sock in readable:
            for _ in range(READS_PER_WAKE):
                before = received()
                rc = client.loop_read()
                if rc != ok:
                    return rc
                if received() == before:  # nothing more (or not a PUBLISH): select
                    break
        if client.want_write() and (rc := client.loop_write()) != ok:
            return rc
        if (rc := client.loop_misc()) != ok:
            return rc


def wake_pair() -> tuple[socket.socket, socket.socket]:
    """(read end, write end), both non-blocking: a wake-up already pending is enough."""
    r, w = socket.socketpair()
    r.setblocking(False)
    w.setblocking(False)
    return r, w


def wake(w: socket.socket) -> None:
    with contextlib.suppress(BlockingIOError, OSError):  # a wake-up is already pending
        w.send(b"\0")


def no_op(*_args: object) -> None:
    """paho's `on_socket_register_write`: never write from a thread that queued a packet."""
