"""The cluster bench's HTTP load (bench/clusterlib/load.py, issue 23) times each request when it
was due, not when its limit of requests in flight let it out: a request that waited for a slow
server's answers to others is late by that wait, and the bench must count it so."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from pathlib import Path

from bench.clusterlib.faults import Phase, _flow_result
from bench.clusterlib.load import Flow, Load, Marks
from tests.conftest import free_port
from tests.connectors.conftest import Broker, tansu_argv
from tests.private_redis import PrivateRedis

DELAY = 0.5  # the server's answer time
RATE = 20.0  # requests a second
OUT = 4  # at most this many in flight: from the 5th on, each waits for an answer
CONNECTIONS: list[asyncio.StreamWriter] = []


async def _slow_server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """HTTP/1.1 keep-alive: every request answered 202 `{}` after DELAY."""
    CONNECTIONS.append(writer)
    with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.decode().split("\r\n"):
                name, _, value = line.partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            await reader.readexactly(length)
            await asyncio.sleep(DELAY)
            writer.write(
                b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\n"
                b"Content-Length: 2\r\n\r\n{}"
            )
            await writer.drain()
    writer.close()


async def test_a_request_held_by_the_limit_is_timed_when_it_was_due() -> None:
    server = await asyncio.start_server(_slow_server, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    load = Load([f"http://127.0.0.1:{port}"], "t", "", "", None, {"http": RATE})
    flow = load.flows["http"]
    run = asyncio.ensure_future(
        load._requests("http", 5, OUT, "/x", lambda n: {"n": n}, lambda _n, a: a[0] == 202)
    )
    await asyncio.sleep(1.5)
    load.stop.set()
    await asyncio.wait_for(run, 10)
    server.close()
    for writer in CONNECTIONS:  # the load's clients keep theirs open
        writer.close()

    sent = {int(i[1:]): t for i, t in flow.sent.items()}
    # 4 answered a DELAY: the limit let through ~8 a second of the 20 due; some waited for it
    assert max(sent) > OUT, sent
    first = sent[0]
    for n, at in sent.items():
        # due at first + n / RATE; timed after the wait, the 5th (n = 4, due 0.2 s) was
        # stamped at ~0.5 s and later ones later still
        assert abs(at - (first + n / RATE)) < 0.1, (n, at - first)
    # when it left is kept apart: the 5th waited ~0.3 s for the first answer
    assert flow.left["h4"] - sent[4] > 0.2, flow.left["h4"] - sent[4]


def test_an_item_counts_in_the_phase_it_left_in_late_from_when_it_was_due(tmp_path: Path) -> None:
    """Due in one phase, held by the limit into the next: the next fault's (what that fault
    does to it is its doing), and as late as it was from when it was due."""
    load = Load(["http://127.0.0.1:1"], "t", "", "", None, {"http": RATE})
    flow = load.flows["http"]
    flow.accepted("h1", 100.0, 100.1)  # due and left in the first phase
    flow.accepted("h2", 109.0, 111.0)  # due in the first, left in the second
    marks = Marks(tmp_path / "marks")
    marks.runs["http"]["h1"].append(100.2)
    marks.runs["http"]["h2"].extend([111.5, 111.6])  # run twice, in the second phase
    first = Phase("a", "kill", "", start=95, inject=98, end=98, stop=110)
    second = Phase("b", "kill", "", start=110, inject=113, end=113, stop=125)
    one, two = (_flow_result(p, load, marks, "http") for p in (first, second))
    assert one is not None and two is not None
    assert (one["sent"], one["run_twice"]) == (1, 0)
    assert (two["sent"], two["run_twice"], two["latency_max_s"]) == (1, 1, 2.5)


def _stamped_when_due(flow: Flow, prefix: str, frozen: tuple[float, float]) -> None:
    """Every item accepted is stamped when it was due (first + n / RATE), those due while the
    broker was frozen too, and some of those were accepted only after it thawed."""
    sent = {int(i[len(prefix) :]): t for i, t in flow.sent.items()}
    first = sent[0]
    during = [n for n, at in sent.items() if frozen[0] <= at < frozen[1] - 0.2]
    assert len(during) >= 5, sorted(sent)  # due while frozen, sent and accepted after
    for n, at in sent.items():
        # stamped when the send began, those due while frozen were ~FREEZE late and more
        assert abs(at - (first + n / RATE)) < 0.1, (n, at - first)
    assert max(flow.answered[f"{prefix}{n}"] - sent[n] for n in during) > FREEZE / 2


FREEZE = 0.8  # seconds the broker is stopped (SIGSTOP: connections stay open, calls hang)


def _freeze(pid: int) -> tuple[float, float]:
    started = time.time()
    os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(FREEZE)
    finally:
        os.kill(pid, signal.SIGCONT)
    return started, time.time()


async def test_kafka_messages_due_while_the_broker_hung_are_late_from_when_due(
    tmp_path: Path,
) -> None:
    """The Kafka sender sent one message after another, each stamped when its send began: while
    Tansu hung, the messages due meanwhile waited for the one in flight and looked on time."""
    port = free_port()
    tansu = Broker("tansu", lambda: tansu_argv(port), port, tmp_path).start()
    try:
        load = Load([], "t", "", "", f"127.0.0.1:{port}", {"kafka": RATE})
        flow = load.flows["kafka"]
        run = asyncio.ensure_future(load._kafka())
        async with asyncio.timeout(30):  # the topic created, the producer going
            while len(flow.sent) < 5:
                await asyncio.sleep(0.05)
        assert tansu.proc is not None
        frozen = await asyncio.to_thread(_freeze, tansu.proc.pid)
        await asyncio.sleep(1.0)
        load.stop.set()
        await asyncio.wait_for(run, 15)
    finally:
        tansu.stop()
    assert not flow.refused, flow.refused
    _stamped_when_due(flow, "k", frozen)


def test_stream_entries_due_while_redis_hung_are_late_from_when_due(tmp_path: Path) -> None:
    """The Redis Streams sender (a thread, one XADD after another) stamped each entry when its
    XADD began: those due while the broker hung looked on time. Each counts in the phase it
    left in (`Flow.left`)."""
    with PrivateRedis(tmp_path / "redis") as server:
        load = Load([], "t", "", f"127.0.0.1:{server.port}", None, {"stream": RATE})
        flow = load.flows["stream"]
        load.start()
        try:
            deadline = time.monotonic() + 10
            while len(flow.sent) < 5 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert server.process is not None
            frozen = _freeze(server.process.pid)
            time.sleep(1.0)
        finally:
            load.close()
    assert not flow.refused, flow.refused
    _stamped_when_due(flow, "s", frozen)
    # the first entry due while it hung waited for it; the others left after it thawed
    late = sorted((int(i[1:]) for i, at in flow.sent.items() if frozen[0] <= at < frozen[1] - 0.2))
    assert all(flow.left[f"s{n}"] >= frozen[1] - 0.05 for n in late[1:]), late


async def test_a_call_to_a_dead_server_goes_to_the_other_at_once_and_says_which() -> None:
    """A server killed outright refuses connections: the call due for it is sent to the other
    server at once (what a load balancer retrying a refused connect does), not held back, and
    each item keeps which server answered it (`Flow.via`, in the run folder's raw.json)."""
    server = await asyncio.start_server(_slow_server, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    dead = free_port()  # nothing listens: refused
    load = Load(
        [f"http://127.0.0.1:{dead}", f"http://127.0.0.1:{port}"], "t", "", "", None, {"http": RATE}
    )
    flow = load.flows["http"]
    run = asyncio.ensure_future(
        load._requests("http", 5, 64, "/x", lambda n: {"n": n}, lambda _n, a: a[0] == 202)
    )
    await asyncio.sleep(1.0)
    load.stop.set()
    await asyncio.wait_for(run, 10)
    server.close()
    for writer in CONNECTIONS:
        writer.close()

    assert not flow.refused, flow.refused
    assert len(flow.sent) >= 10, flow.sent
    assert set(flow.via.values()) == {1}, flow.via  # all answered by the live one
    # those due for the dead one (even n) left when due, and were answered in ~DELAY
    for ident, due in flow.sent.items():
        assert flow.left[ident] - due < 0.2, (ident, flow.left[ident] - due)
        assert flow.answered[ident] - due < DELAY + 0.3, (ident, flow.answered[ident] - due)
