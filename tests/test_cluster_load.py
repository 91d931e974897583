"""The cluster bench's HTTP load (bench/clusterlib/load.py, issue 23) times each request when it
was due, not when its limit of requests in flight let it out: a request that waited for a slow
server's answers to others is late by that wait, and the bench must count it so."""

from __future__ import annotations

import asyncio
import contextlib

from bench.clusterlib.load import Load

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
