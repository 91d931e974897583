"""A link emulator in userspace: `tc netem`'s delay and random loss on one test host's link,
for kernels without `sch_netem` (this test machine's has neither it nor any tc classifier).

The host's veth end in the switch namespace leaves the bridge; a TAP device takes its place on
br0, and a relay process in the switch namespace copies Ethernet frames between the two (an
AF_PACKET socket on the veth end, the TAP's fd). Frames the host sends wait `delay_ms` in a
FIFO (so their order holds) and `loss_pct` % of them are dropped at random, as `tc netem` on
the host's eth0 does to its egress; frames to the host pass at once, as they do past a netem
on eth0 (its ingress has no qdisc), so a round trip gains `delay_ms` once in either kind of
run and the bench's figures compare. The kernels on both ends see real delay and real loss of
single frames: their TCP retransmits and backs off as on a bad link.

The host's eth0 sends frames of at most its MTU while the emulator runs (checksum offload,
TSO, GSO and GRO off, restored after): a veth otherwise hands over 64 KB TCP super-frames with
checksums left to the hardware, which a frame relay can neither drop singly nor pass on
intact. The relay runs with a real-time priority, as netem runs in the kernel ahead of any
process (on a loaded machine a plain process's waits for a core would add to the delay), and in
the switch namespace, so `Net.teardown`'s sweep of the namespaces' processes kills it with the
cluster; it also stops when its stdin closes (the bench that started it ended)."""

from __future__ import annotations

import argparse
import collections
import contextlib
import fcntl
import json
import math
import os
import random
import select
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent

TUNSETIFF = 0x400454CA
IFF_TAP, IFF_NO_PI = 0x0002, 0x1000
ETH_P_ALL = 0x0003
SOL_PACKET, PACKET_IGNORE_OUTGOING = 263, 23  # (Linux 4.20) the socket module names neither
SO_TIMESTAMPNS = 35  # nor this: a frame's arrival time, by the kernel, with it
SO_RCVBUFFORCE = 33  # root's SO_RCVBUF past net.core.rmem_max
#: ethtool -k names of what is turned off on eth0 and the -K names that set them
OFFLOADS = {
    "tx-checksumming": "tx",
    "tcp-segmentation-offload": "tso",
    "generic-segmentation-offload": "gso",
    "generic-receive-offload": "gro",
}
#: a frame longer than this (Ethernet header + 1500) means an offload is still on
MAX_FRAME = 1514
#: `tc netem`'s default queue limit, in frames: past it a frame is dropped (tail drop)
LIMIT = 1000


# -- the relay, in the switch namespace ---------------------------------------------------------
def _open_tap(name: str) -> int:
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH22x", name.encode(), IFF_TAP | IFF_NO_PI))
    return fd


def _open_packet(dev: str) -> socket.socket:
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    # our own sends to the host would otherwise come back as frames "from" it
    sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
    sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 4 << 20)  # bursts while it waits
    # the delay counts from the frame's arrival, as netem's from its enqueue: not from when
    # this process got round to reading it
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    sock.bind((dev, ETH_P_ALL))
    sock.setblocking(False)
    return sock


def relay(
    outer: str, tap: str, delay_ms: float, loss_pct: float, limit: int = LIMIT
) -> dict[str, int]:
    """Create the TAP, say `ready`, wait for `go` on stdin (the parent has put the TAP on the
    bridge in the veth end's place: no frame goes both ways), say `on`, then copy frames until
    stdin closes; returns the counts."""
    with contextlib.suppress(OSError):  # SCHED_FIFO 1: ahead of the cluster's processes
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
    tap_fd = _open_tap(tap)
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        return {}
    sock = _open_packet(outer)
    print("on", flush=True)
    delay, loss = delay_ms / 1000, loss_pct / 100
    # (release at, frame): wall-clock times, as the kernel stamps arrivals
    queue: collections.deque[tuple[float, bytes]] = collections.deque()
    counts = dict.fromkeys(
        ("from_host", "lost_random", "lost_limit", "to_host", "oversize", "errors", "late_ms_max"),
        0,
    )
    late, released = 0.0, 0  # how late frames went out in all (the relay's own waits), s
    poll = select.poll()
    for fd in (sys.stdin.fileno(), sock.fileno(), tap_fd):
        poll.register(fd, select.POLLIN)
    while True:
        wait = None if not queue else max(0, math.ceil((queue[0][0] - time.time()) * 1000))
        for fd, _event in poll.poll(wait):
            if fd == sys.stdin.fileno():  # the parent closed it (or died): the queue is dropped
                counts["late_ms_mean"] = round(late / max(1, released) * 1000)
                return counts
            if fd == sock.fileno():
                _from_host(sock, queue, counts, delay, loss, limit)
            else:
                _to_host(tap_fd, sock, counts)
        now = time.time()
        while queue and queue[0][0] <= now:
            at, frame = queue.popleft()
            late, released = late + now - at, released + 1
            counts["late_ms_max"] = max(counts["late_ms_max"], round((now - at) * 1000))
            try:
                os.write(tap_fd, frame)
            except OSError:
                counts["errors"] += 1


def _from_host(
    sock: socket.socket,
    queue: collections.deque[tuple[float, bytes]],
    counts: dict[str, int],
    delay: float,
    loss: float,
    limit: int,
) -> None:
    """Queue what the host sent: dropped at random, or past the limit, on arrival (as netem's
    enqueue does)."""
    for _ in range(256):
        try:
            frame, ancillary, _flags, addr = sock.recvmsg(65536, socket.CMSG_SPACE(16))
        except BlockingIOError:
            return
        if addr[2] == socket.PACKET_OUTGOING:
            continue
        arrived = time.time()
        for level, kind, data in ancillary:
            if (level, kind) == (socket.SOL_SOCKET, SO_TIMESTAMPNS):
                seconds, nanoseconds = struct.unpack("qq", data)
                arrived = seconds + nanoseconds / 1e9
        counts["from_host"] += 1
        counts["oversize"] += len(frame) > MAX_FRAME
        if random.random() < loss:
            counts["lost_random"] += 1
        elif len(queue) >= limit:
            counts["lost_limit"] += 1
        else:
            queue.append((arrived + delay, frame))


def _to_host(tap_fd: int, sock: socket.socket, counts: dict[str, int]) -> None:
    for _ in range(256):
        try:
            frame = os.read(tap_fd, 65536)
        except BlockingIOError:
            return
        try:
            sock.send(frame)
            counts["to_host"] += 1
        except OSError:
            counts["errors"] += 1


# -- the link, from the bench --------------------------------------------------------------------
def _ip(*args: str) -> str:
    return subprocess.run(["ip", *args], check=True, capture_output=True, text=True).stdout


def offloads(ns: str, dev: str) -> dict[str, str]:
    """`ethtool -k` of a device in a namespace: feature → "on"/"off" (", fixed" dropped)."""
    out = subprocess.run(
        ["ip", "netns", "exec", ns, "ethtool", "-k", dev],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    features = {}
    for line in out.splitlines()[1:]:
        name, _, value = line.strip().partition(": ")
        features[name] = value.split()[0] if value else ""
    return features


def _set_offloads(ns: str, dev: str, values: dict[str, str]) -> None:
    args = [x for name, value in values.items() for x in (OFFLOADS[name], value)]
    subprocess.run(
        ["ip", "netns", "exec", ns, "ethtool", "-K", dev, *args],
        check=True,
        capture_output=True,
    )


class LinkEmulator:
    """`delay_ms` and `loss_pct` on the frames `host_ns`'s eth0 sends, by a relay in `switch`
    in place of the bridge port `outer` (eth0's peer); `stop` restores the direct link."""

    def __init__(
        self, switch: str, host_ns: str, outer: str, delay_ms: float, loss_pct: float
    ) -> None:
        self.switch, self.host_ns, self.outer = switch, host_ns, outer
        self.tap = f"{outer[:14]}t"
        self.delay_ms, self.loss_pct = delay_ms, loss_pct
        self.saved: dict[str, str] = {}
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        before = offloads(self.host_ns, "eth0")
        self.saved = {k: before[k] for k in OFFLOADS if before.get(k) in ("on", "off")}
        _set_offloads(self.host_ns, "eth0", dict.fromkeys(self.saved, "off"))
        argv = [sys.executable, "-m", "bench.clusterlib.linkemu", self.outer, self.tap]
        argv += [str(self.delay_ms), str(self.loss_pct)]
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", self.switch, *argv],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdin and self.proc.stdout
        if self.proc.stdout.readline().strip() != "ready":
            self.stop()
            raise RuntimeError(f"link emulator for {self.outer} did not start")
        _ip("-n", self.switch, "link", "set", self.outer, "nomaster")
        _ip("-n", self.switch, "link", "set", self.tap, "master", "br0")
        _ip("-n", self.switch, "link", "set", self.tap, "up")
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        if self.proc.stdout.readline().strip() != "on":
            self.stop()
            raise RuntimeError(f"link emulator for {self.outer} failed")

    def stop(self) -> dict[str, int]:
        """End the relay (its TAP goes with its fd), put the veth end back on the bridge, and
        eth0's offloads back as they were; returns the relay's counts."""
        counts: dict[str, int] = {}
        if self.proc is not None:
            try:
                out, _ = self.proc.communicate(timeout=5)  # stdin closed: it stops
                counts = json.loads(out or "{}")
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.communicate()
            except ValueError:
                pass  # it died before it could count: nothing to report
            self.proc = None
        _ip("-n", self.switch, "link", "set", self.outer, "master", "br0")
        if self.saved:
            _set_offloads(self.host_ns, "eth0", self.saved)
        return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("outer", help="the host's veth end (off the bridge)")
    parser.add_argument("tap", help="the TAP device to create (the parent puts it on br0)")
    parser.add_argument("delay_ms", type=float)
    parser.add_argument("loss_pct", type=float)
    args = parser.parse_args()
    counts = relay(args.outer, args.tap, args.delay_ms, args.loss_pct)
    print(json.dumps(counts), flush=True)


if __name__ == "__main__":
    main()
