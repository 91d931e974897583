"""The cluster bench's netem fault (issue 23) on a kernel without `sch_netem`: the userspace link
emulator (bench/clusterlib/linkemu.py) must add the delay and drop frames at random on the way
out of a host, as `tc netem` on its eth0 would, pass TCP intact, and leave the link as it
found it when undone. Two namespaces on a bridge, as `bench/cluster.py` builds them."""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import statistics
import struct
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from bench.clusterlib.linkemu import offloads
from bench.clusterlib.net import Net, ip
from tests.test_cluster_quick import netns_refused, own_subnet


def _why_not() -> str | None:
    if os.geteuid() != 0:
        return "needs root for ip netns"
    for tool in ("ip", "ethtool"):
        if not shutil.which(tool):
            return f"{tool} not installed"
    if not os.path.exists("/dev/net/tun"):
        return "no /dev/net/tun"
    return netns_refused()


@pytest.fixture
def net() -> Iterator[Net]:
    reason = _why_not()
    if reason:
        pytest.skip(reason)
    net = Net(f"fle{uuid.uuid4().hex[:4]}", own_subnet())
    try:
        net.create({"a": 1, "b": 2})
        yield net
    finally:
        for host in list(net.emulators):
            net.clear_netem(host)
        net.teardown()


def _socket_in(net: Net, host: str, kind: int) -> socket.socket:
    """A socket of the host's namespace (a socket stays in the namespace it was made in)."""
    made: list[socket.socket] = []

    def make() -> None:
        net.enter(host)
        made.append(socket.socket(socket.AF_INET, kind))

    thread = threading.Thread(target=make)
    thread.start()
    thread.join()
    return made[0]


def _echo(sock: socket.socket) -> None:
    while True:
        try:
            data, peer = sock.recvfrom(64)
            sock.sendto(data, peer)
        except OSError:
            return  # closed


def _probe(sock: socket.socket, to: tuple[str, int], count: int, every: float) -> list[float]:
    """Send `count` datagrams `every` seconds to the echo; the round-trip times of those that
    came back (within 1 s of the last send)."""
    sent: dict[int, float] = {}
    rtts: list[float] = []
    started = time.monotonic()
    n = 0
    while True:
        now = time.monotonic()
        if n < count and now >= started + n * every:
            sent[n] = now
            sock.sendto(struct.pack("!I", n), to)
            n += 1
            continue
        end = started + count * every + 1
        if now >= end or len(rtts) == count:
            return rtts
        next_send = started + n * every if n < count else end
        sock.settimeout(max(0.001, next_send - now))
        try:
            data = sock.recv(64)
        except TimeoutError:
            continue
        rtts.append(time.monotonic() - sent[struct.unpack("!I", data)[0]])


def _tcp_transfer(net: Net, b_addr: str, size: int) -> tuple[str, str]:
    """`size` random bytes from a to b over TCP; the digests sent and received."""
    server, client = (
        _socket_in(net, "b", socket.SOCK_STREAM),
        _socket_in(net, "a", socket.SOCK_STREAM),
    )
    server.bind((b_addr, 9000))
    server.listen()
    got = hashlib.sha256()

    def receive() -> None:
        conn, _ = server.accept()
        while data := conn.recv(65536):
            got.update(data)
        conn.close()

    reader = threading.Thread(target=receive)
    reader.start()
    payload = os.urandom(size)
    client.settimeout(10)
    client.connect((b_addr, 9000))
    client.sendall(payload)
    client.close()
    reader.join(10)
    server.close()
    return hashlib.sha256(payload).hexdigest(), got.hexdigest()


def test_link_emulator_delays_and_drops_frames_and_undo_restores_the_link(net: Net) -> None:
    a_addr, b_addr = net.addr(1), net.addr(2)
    echo = _socket_in(net, "b", socket.SOCK_DGRAM)
    echo.bind((b_addr, 7))
    threading.Thread(target=_echo, args=(echo,), daemon=True).start()
    sock = _socket_in(net, "a", socket.SOCK_DGRAM)
    sock.bind((a_addr, 0))
    outer = net.outer("a")
    eth0_before = offloads(net.ns("a"), "eth0")

    before = _probe(sock, (b_addr, 7), 100, 0.002)  # ARP resolved, the direct link's RTT
    assert len(before) == 100
    assert statistics.median(before) < 0.05

    did = net.netem("a", 200, 5)
    assert "link emulator" in did or "tc netem" in did
    bridged = ip("-n", net.switch, "-d", "link", "show", outer).stdout
    assert "master br0" not in bridged  # the relay is between the host and the bridge
    rtts = _probe(sock, (b_addr, 7), 300, 0.005)
    lost = 300 - len(rtts)
    # 5 % of 300 is 15 (sd ~3.8): 3-36 is far beyond chance
    assert 3 <= lost <= 36, lost
    assert min(rtts) >= 0.2, min(rtts)
    assert statistics.median(rtts) < 0.5, statistics.median(rtts)
    # TCP through it: full-size frames only (offloads off), lost ones retransmitted, intact
    sent, received = _tcp_transfer(net, b_addr, 256 * 1024)
    assert received == sent
    counts = net.clear_netem("a")
    if "link emulator" in did:
        assert counts["oversize"] == 0, counts
        assert counts["lost_random"] >= lost, counts  # the TCP transfer's frames too
        assert counts["to_host"] > 0, counts

    assert "master br0" in ip("-n", net.switch, "-d", "link", "show", outer).stdout
    assert f"{outer[:14]}t" not in ip("-n", net.switch, "link", "show").stdout
    assert offloads(net.ns("a"), "eth0") == eth0_before
    after = _probe(sock, (b_addr, 7), 200, 0.002)
    assert len(after) == 200
    assert statistics.median(after) < 0.05, statistics.median(after)
    sock.close()
    echo.close()


def test_teardown_ends_the_relay(net: Net) -> None:
    """The relay runs in the switch namespace: a cluster's teardown kills it with the rest."""
    did = net.netem("a", 200, 5)
    if "link emulator" not in did:
        pytest.skip(f"the kernel has netem: {did}")
    relay = net.emulators.pop("a").proc
    assert relay is not None and relay.poll() is None
    net.teardown()
    assert relay.wait(5) == -9
