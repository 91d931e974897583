"""Behind Sentinel, a subscription the hub verified keeps where it starts through a failover:
its cursor is confirmed by a replica before its row makes it active (`websub.verify`).

The subscriber's callback asks the Sentinels for a failover when the verification GET comes and
echoes the challenge only once the replica has been promoted: the hub then applies the
subscription while its Redis clients are still on the old primary, whose writes from then on
are dropped. The row is in SQL, which keeps it; before this change its cursor was written to the
old primary only, so the new primary held an active subscription without a cursor (a deliverer
started there begins at the topic's end of that moment, skipping what was published since the
verification). Now the unconfirmed cursor is written again once the clients moved, and the row
is written only after it: the new primary never lacks the cursor of an active subscription.
With the replica stopped instead, the subscription waits for it."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import redis
from tests.conftest import free_port, wait_for
from tests.sentinel_redis import SentinelRedis

from fnhub.keys import Keys

from .conftest import Stack, close_stack, make_stack

TOPIC = "http://topics.example/failover"


class Subscriber:
    """A callback that fails the Redis primary over (or runs `first`) on the first
    verification, then agrees."""

    def __init__(self, sentinel: SentinelRedis, first: Callable[[], None] | None = None) -> None:
        self.sentinel = sentinel
        self.first = first or self.fail_over
        self.verifications: list[str] = []
        self.notifications: list[bytes] = []
        self.promoted = threading.Event()
        self.port = free_port()
        subscriber = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = parse_qs(urlsplit(self.path).query)
                challenge = query.get("hub.challenge", [""])[0]
                subscriber.verifications.append(query.get("hub.mode", [""])[0])
                if len(subscriber.verifications) == 1:
                    subscriber.first()
                body = challenge.encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                subscriber.notifications.append(self.rfile.read(length))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/cb"

    def fail_over(self) -> None:
        """`SENTINEL FAILOVER`, answered once the replica is primary (before the Sentinels name
        it, so the hub's clients are still on the old primary)."""
        replica = self.sentinel.ports[1]
        client = self.sentinel.sentinel()
        try:
            client.execute_command("SENTINEL", "FAILOVER", "fnhub-test")
        finally:
            client.close()
        wait_for(lambda: self.sentinel.role(replica) == "master", timeout=10, interval=0.01)
        self.promoted.set()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def sentinel(tmp_path: Path) -> Iterator[SentinelRedis]:
    redis_servers = SentinelRedis(tmp_path / "redis", replicas=1)
    redis_servers.start()
    try:
        yield redis_servers
    finally:
        redis_servers.close()


@pytest.fixture
def stack(sentinel: SentinelRedis, tmp_path: Path) -> Iterator[Stack]:
    s = make_stack(
        tmp_path / "stack",
        workers=False,
        redis_url=sentinel.url,
        enqueue_replicas_timeout="0.5",
        websub_allow_networks="127.0.0.0/8",
        websub_open="true",
        # the deliverer started on the old primary keeps its claim's lease for 10 s: none
        # writes a cursor of its own on the new primary while the test looks
        websub_owner_ttl="30",
    )
    try:
        yield s
    finally:
        close_stack(s)


def _subscribe_through_a_failover(
    stack: Stack, sentinel: SentinelRedis, subscriber: Subscriber
) -> None:
    """Ask for a subscription (the callback fails the primary over when verified); return once
    the Sentinels name the promoted replica."""
    new = sentinel.ports[1]
    # the replica confirms the intent (the 202), as the SENTINEL FAILOVER starts later
    wait_for(lambda: sentinel.role(new) == "slave", timeout=10)
    with stack.client() as c:
        form = {"hub.mode": "subscribe", "hub.callback": subscriber.url, "hub.topic": TOPIC}
        r = c.post("/websub/hub", data=form)
        assert r.status_code == 202, r.text
    assert subscriber.promoted.wait(20), "no verification GET, or no promotion"
    wait_for(lambda: sentinel.primary_port() == new, timeout=10)


def test_a_verified_subscription_keeps_its_cursor_through_a_failover(
    stack: Stack, sentinel: SentinelRedis
) -> None:
    subscriber = Subscriber(sentinel)
    old, new = sentinel.ports
    cursors = Keys(stack.prefix).websub_cursors
    try:
        _subscribe_through_a_failover(stack, sentinel, subscriber)
        primary = redis.Redis(port=new, socket_timeout=2)
        without: list[str] = []
        active: list[str] = []
        try:
            deadline = time.monotonic() + 8
            while time.monotonic() < deadline and not without:
                with stack.admin() as c:
                    rows = c.get("/api/v1/websub/subscriptions", params={"state": "active"})
                assert rows.status_code == 200, rows.text
                active = [row["id"] for row in rows.json()]
                without = [sid for sid in active if not primary.hexists(cursors, sid)]
                time.sleep(0.1)
        finally:
            primary.close()
        # an active subscription the new primary has no cursor for: its start was lost
        assert not without, f"active without a cursor on the new primary {new} (old {old})"
        assert active, "the verified subscription never became active on the new primary"
        assert subscriber.verifications[0] == "subscribe"
    finally:
        subscriber.close()


def _active(stack: Stack) -> list[str]:
    with stack.admin() as c:
        rows = c.get("/api/v1/websub/subscriptions", params={"state": "active"})
    assert rows.status_code == 200, rows.text
    return [row["id"] for row in rows.json()]


def test_a_verified_subscription_waits_for_a_replica(stack: Stack, sentinel: SentinelRedis) -> None:
    """The replica stopped (SIGSTOP: connected, confirming nothing) as the subscriber echoes the
    challenge: the subscription is not active while no replica can have its cursor (before this
    change it was at once), and is once the replica is back (the cursor written again)."""
    replica = sentinel.processes[1]
    subscriber = Subscriber(sentinel, lambda: replica.send_signal(signal.SIGSTOP))
    try:
        with stack.client() as c:
            form = {"hub.mode": "subscribe", "hub.callback": subscriber.url, "hub.topic": TOPIC}
            r = c.post("/websub/hub", data=form)
            assert r.status_code == 202, r.text
        wait_for(lambda: subscriber.verifications, timeout=20)
        try:
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                assert not _active(stack), "active although no replica confirmed its cursor"
                time.sleep(0.1)
        finally:
            replica.send_signal(signal.SIGCONT)
        active = wait_for(lambda: _active(stack), timeout=15)
        primary = redis.Redis(port=sentinel.ports[0], socket_timeout=2)
        try:
            assert primary.hexists(Keys(stack.prefix).websub_cursors, active[0])
        finally:
            primary.close()
        assert subscriber.verifications == ["subscribe"]  # applied, not verified again
    finally:
        replica.send_signal(signal.SIGCONT)
        subscriber.close()


def test_a_publish_before_the_failed_over_subscription_is_applied_reaches_it(
    stack: Stack, sentinel: SentinelRedis
) -> None:
    """The subscriber agrees once the replica is primary; the hub's first write of the cursor
    goes to the old primary, unconfirmed, and is tried again 2 s later. A publish on the new
    primary meanwhile was answered "without subscribers" (the topic's `starting` marker was
    written after the answer, to the old primary, and the row is not active yet), or stored
    before the cursor the retry put at the topic's end of its own time: either way never
    delivered. Now the marker is confirmed before the subscriber is asked and the cursor
    starts where the topic ended then, so the publish is stored and delivered."""
    subscriber = Subscriber(sentinel)
    try:
        _subscribe_through_a_failover(stack, sentinel, subscriber)
        with stack.client() as c:
            publish = {"hub.mode": "publish", "hub.url": TOPIC, "hub.content": "in the gap"}
            deadline = time.monotonic() + 5
            while True:  # 503 while the hub's clients move to the new primary
                r = c.post("/websub/hub", data=publish)
                if r.status_code != 503 or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            assert r.status_code == 202, r.text
        # the publish came before the subscription was applied (else this proves nothing)
        assert not _active(stack), "the subscription was applied before the publish"
        assert "without subscribers" not in r.text, r.text
        wait_for(lambda: subscriber.notifications, timeout=20)
        assert subscriber.notifications == [b"in the gap"]
        assert subscriber.verifications == ["subscribe"]
    finally:
        subscriber.close()
