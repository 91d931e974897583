"""The console's overview through a real server, worker, Redis and database: one snapshot
(`/overview`), per-function counts after real tasks, and the SSE feed: one producer for every
client, a task showing up in it, heartbeats, and an end at server shutdown."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.conftest import wait_for

from .conftest import Stack, close_stack, make_stack

SCRIPT = """
import fnhub


@fnhub.api()
def a(fail: bool = False):
    if fail:
        raise ValueError("asked to")
    return 1


@fnhub.api()
def b():
    return 2


@fnhub.api()
def on_message(topic, message):
    return len(message)
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = make_stack(tmp_path_factory.mktemp("feed"), console_heartbeat_seconds="1")
    try:
        with s.admin() as c:
            assert c.put("/api/v1/scripts/ov", json={"code": SCRIPT}).status_code == 200
        yield s
    finally:
        close_stack(s)


class Events:
    """Reads an SSE stream: `next()` is the next event as (name, data) or ("comment", text)."""

    def __init__(self, response: httpx.Response) -> None:
        self.lines = response.iter_lines()

    def next(self) -> tuple[str, object]:
        name, data = "", ""
        for line in self.lines:
            if line.startswith(":"):
                return "comment", line[1:].strip()
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data += line[5:].strip()
            elif line == "" and name:
                return name, json.loads(data)
        raise EOFError("the stream ended")

    def snapshot(self) -> dict:
        while True:
            name, data = self.next()
            if name == "snapshot":
                assert isinstance(data, dict)
                return data

    def until(self, tick: int) -> dict:
        """The first snapshot of tick `tick` or later."""
        while (snap := self.snapshot())["feed"]["tick"] < tick:
            pass
        return snap


def _open(c: httpx.Client, url: str = "/api/v1/events") -> httpx.Response:
    response = c.send(c.build_request("GET", url), stream=True)
    assert response.status_code == 200, response.read()
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"].startswith("no-cache")
    return response


def test_two_clients_share_one_producer_and_see_a_task_run(stack: Stack) -> None:
    with stack.admin() as c1, stack.admin() as c2:
        r1 = _open(c1)
        e1 = Events(r1)
        first = e1.snapshot()
        r2 = _open(c2)
        e2 = Events(r2)
        s1, s2 = e1.snapshot(), e2.snapshot()
        assert first["feed"]["producer_runs"] == s1["feed"]["producer_runs"]
        assert s2["feed"]["producer_runs"] == s1["feed"]["producer_runs"]  # no second producer
        assert {s1["server"], s2["server"]} == {first["server"]}
        # both get the very snapshot each tick makes (one computation, sent to both)
        tick = max(s1["feed"]["tick"], s2["feed"]["tick"]) + 1
        same1, same2 = e1.until(tick), e2.until(tick)
        assert same1 == same2 and same1["feed"]["clients"] == 2
        # one snapshot a second for both clients together: two producers would make twice that
        before = c1.get("/api/v1/overview").json()["feed"]
        time.sleep(3)
        after = c1.get("/api/v1/overview").json()["feed"]
        assert after["running"] and after["clients"] == 2
        assert after["producer_runs"] == before["producer_runs"] == s1["feed"]["producer_runs"]
        assert 2 <= after["tick"] - before["tick"] <= 4, (before, after)

        task = c1.post("/api/v1/functions/ov.b/call", json={}).json()
        assert task["status"] == "success"

        def shows_the_task() -> dict | None:
            snap = e2.snapshot()
            in_tail = task["id"] in {row["id"] for row in snap["tail"]}
            counted = {f["function"]: f for f in snap["functions"]}.get("ov.b")
            return snap if in_tail and counted else None

        snap = wait_for(shows_the_task, timeout=10)
        row = next(r for r in snap["tail"] if r["id"] == task["id"])
        assert (row["function"], row["status"], row["origin"]) == ("ov.b", "success", "api")
        # this minute's bucket, or the one before if the minute turned since the call
        assert sum(snap["totals"]["calls_per_minute"][-2:]) >= 1
        assert {w["id"] for w in snap["workers"]} and all(
            w["children"] for w in snap["workers"]
        )  # the worker's processes, from their consumers
        assert {"sync", "async"} <= {q["name"] for q in snap["queues"]}
        r1.close()
        r2.close()

    with stack.admin() as c:
        # nobody listens any more: the producer stops at its next tick and ticks no more
        state = wait_for(
            lambda: (f := c.get("/api/v1/overview").json()["feed"])["running"] is False and f, 5
        )
        assert state["clients"] == 0
        time.sleep(1.5)
        assert c.get("/api/v1/overview").json()["feed"]["tick"] == state["tick"]
        # a new page starts a new producer
        r = _open(c)
        snap = Events(r).snapshot()
        assert snap["feed"]["producer_runs"] == state["producer_runs"] + 1
        r.close()


def test_overview_counts_the_tasks_of_each_function(stack: Stack) -> None:
    with stack.admin() as c:
        for kwargs in [{}, {}, {}, {"fail": True}, {"fail": True}]:
            c.post("/api/v1/functions/ov.a/call", json={"kwargs": kwargs})
        for _ in range(3):
            assert c.post("/api/v1/functions/ov.b/call", json={}).status_code == 200

        def counts() -> dict[str, tuple[int, int]]:
            functions = c.get("/api/v1/overview").json()["functions"]
            return {f["function"]: (f["calls"], f["failures"]) for f in functions}

        # ov.b ran once more in the test above when the whole module runs
        wait_for(lambda: counts().get("ov.a") == (5, 2), timeout=5)
        assert counts()["ov.b"][0] in (3, 4)

        a = c.get("/api/v1/stats/functions/ov.a").json()
        assert (a["calls"], a["failures"], a["statuses"]) == (5, 2, {"failure": 2, "success": 3})
        assert sum(a["calls_per_minute"]) == 5 and sum(a["failures_per_minute"]) == 2
        assert len(a["calls_per_minute"]) == a["minutes"]["count"] == 60
        assert 0 < a["p50_ms"] <= a["p95_ms"] <= a["p99_ms"]

        def listed() -> dict[str, dict]:  # summed in the background: at most a second behind
            return {f["function"]: f for f in c.get("/api/v1/stats/functions").json()}

        wait_for(lambda: listed()["ov.a"]["calls"] == 5, timeout=5)
        assert listed()["ov.a"]["failures"] == 2 and listed()["ov.a"]["p99_ms"] > 0
        nobody = c.get("/api/v1/stats/functions/ov.nothing")
        assert nobody.status_code == 404 and nobody.json()["error"]["code"] == "unknown_function"


def test_overview_shows_each_subscription_as_its_servers_see_it(stack: Stack) -> None:
    stream = f"{stack.prefix}:in"
    connector = {"type": "redis", "settings": {"url": "redis://127.0.0.1:6379/0"}}
    subscription = {
        "connector": "local",
        "topics": [stream],
        "function": "ov.on_message",
        "options": {"kind": "stream", "start": "0"},
    }
    with stack.admin() as c:
        assert c.put("/api/v1/connectors/local", json=connector).status_code == 200
        answer = c.put("/api/v1/subscriptions/feedsub", json=subscription)
        assert answer.status_code == 200, answer.text
        for i in range(3):
            stack.redis.xadd(stream, {"data": f"m{i}"})

        def seen() -> dict | None:
            subs = {s["name"]: s for s in c.get("/api/v1/overview").json()["subscriptions"]}
            sub = subs.get("feedsub")
            servers = sub["servers"] if sub else []
            return sub if servers and servers[0]["processed"] == 3 else None

        sub = wait_for(seen, timeout=20, interval=0.3)
        assert (sub["mode"], sub["enabled"], sub["function"]) == ("single", True, "ov.on_message")
        [server] = sub["servers"]
        assert server["subscribed"] and server["state"] == "connected"
        assert server["rate_per_minute"] == 3 and server["last_error"] is None
        last = server["last"]  # the newest message, with the task that handled it
        assert (last["outcome"], last["binary"], last["result"]) == ("success", False, "2")
        assert last["text"] in ("m0", "m1", "m2")  # finished last (a batch ends in any order)

        def recorded() -> dict | None:
            found = c.get(f"/api/v1/tasks/{last['task_id']}/record")
            return found.json() if found.status_code == 200 else None

        record = wait_for(recorded, timeout=5)
        assert record["origin_id"] == "feedsub" and record["kwargs"]["message"] == last["text"]
        assert c.delete("/api/v1/subscriptions/feedsub").status_code == 200
        wait_for(
            lambda: (
                "feedsub"
                not in {s["name"] for s in c.get("/api/v1/overview").json()["subscriptions"]}
            ),
            timeout=5,
        )


def test_the_stream_sends_heartbeats_and_ends_at_shutdown(tmp_path: Path) -> None:
    own = make_stack(tmp_path, console_heartbeat_seconds="1", shutdown_grace_seconds="20")
    try:
        with own.admin() as c:
            response = _open(c)
            events = Events(response)
            seen = set()
            deadline = time.monotonic() + 5
            while {"snapshot", "comment"} - seen and time.monotonic() < deadline:
                name, data = events.next()
                seen.add(name)
                if name == "comment":
                    assert data == "ping"
            assert seen == {"snapshot", "comment"}
            stopping = time.monotonic()
            own.server.send_signal(signal.SIGTERM)
            with pytest.raises(EOFError):  # the response ended properly, not cut off
                while True:  # snapshots until the server ends the stream
                    events.next()
            assert time.monotonic() - stopping < 5  # not the 20 s grace period
        assert own.server.wait(15) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal
        log = (own.dir / "server.log").read_text()  # the stack's server logs to this file
        assert "timeout graceful shutdown exceeded" not in log, log[-2000:]
    finally:
        close_stack(own)


def test_a_client_that_resets_its_stream_does_not_kill_the_server(tmp_path: Path) -> None:
    """A browser tab closed mid-stream resets the connection; the server's next write to it
    fails with EPIPE. It must be an error on that one connection, not a SIGPIPE that kills the
    process (Python ignores SIGPIPE; a role must never put the default action back)."""
    import socket
    import struct

    stack = make_stack(tmp_path, workers=False, console_heartbeat_seconds="0.2")
    try:
        port = int(stack.url.rsplit(":", 1)[1])
        for abrupt in (False, True, False):
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            request = (
                "GET /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Authorization: Bearer {stack.token}\r\nAccept: text/event-stream\r\n\r\n"
            )
            sock.sendall(request.encode())
            assert sock.recv(4096).startswith(b"HTTP/1.1 200")
            if abrupt:  # RST at once (linger 0); else FIN, and the peer's RST on the next write
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()
            time.sleep(1.0)
        assert stack.server.poll() is None, (tmp_path / "server.log").read_text()[-3000:]
        ignored = next(
            int(line.split()[1], 16)
            for line in Path(f"/proc/{stack.server.pid}/status").read_text().splitlines()
            if line.startswith("SigIgn:")
        )
        assert ignored & (1 << (signal.SIGPIPE - 1)), "the server must ignore SIGPIPE"
        with stack.client() as c:
            assert c.get("/healthz").status_code == 200
    finally:
        close_stack(stack)
