"""Traffic into the cluster at fixed rates, and what the functions marked as run.

Each flow records when each item was due (by its rate: a sender behind its schedule makes
its items late, and they count so) and whether the broker or server accepted it (`sent`
means: HTTP 202 with a task id, MQTT PUBACK, XADD's id, Kafka's ack, the WebSub hub's 202
"published to 1 topic(s)"); the functions, and the WebSub subscriber (`subscriber.py`) for
each delivery, append `kind id time` to one marks file per run, so what ran (and how often) is
known apart from Redis, whatever a failover loses."""

from __future__ import annotations

import asyncio
import collections
import itertools
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Flow:
    kind: str
    rate: float
    sent: dict[str, float] = field(default_factory=dict)  # id → time sent (accepted only)
    refused: list[float] = field(default_factory=list)  # times of sends not accepted
    ok: list[tuple[float, float]] = field(default_factory=list)  # sync calls: (sent, answered)
    answered: dict[str, float] = field(default_factory=dict)  # id → accepted at (HTTP answer)
    # id → when it left (an HTTP request or Kafka message held by its limit, an XADD or MQTT
    # publish behind one that hung): a phase counts it as its own by this, so what a later
    # fault does to it is not put on the fault of the moment it was due
    left: dict[str, float] = field(default_factory=dict)
    # (when, seconds late) of the flow's own event loop, past LAG_NOTED: the load generator's
    # stalls, which delay its requests as a slow server would (`_watch_lag`)
    lags: list[tuple[float, float]] = field(default_factory=list)
    # id → the server (its index in `Load.servers`) that answered it: a timeline per server
    via: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def accepted(
        self, ident: str, at: float, left: float | None = None, via: int | None = None
    ) -> None:
        with self.lock:
            self.sent[ident] = at
            self.answered[ident] = time.time()
            if left is not None:
                self.left[ident] = left
            if via is not None:
                self.via[ident] = via


#: Kafka messages sent and not yet acknowledged, at most
KAFKA_OUT = 64

#: the HTTP flows' loops are checked every LAG_TICK seconds; a wake-up later than LAG_NOTED is kept
LAG_TICK = 0.05
LAG_NOTED = 0.05


async def _watch_lag(flow: Flow, stop: threading.Event) -> None:
    """Note when this event loop woke up late (the load process starved, or busy elsewhere)."""
    while not stop.is_set():
        started = time.monotonic()
        await asyncio.sleep(LAG_TICK)
        late = time.monotonic() - started - LAG_TICK
        if late > LAG_NOTED:
            flow.lags.append((time.time(), late))


def _schedule(rate: float, stop: threading.Event) -> Iterator[tuple[int, float, float]]:
    """(n, seconds to wait before sending n, the time n is due) at `rate` a second, until
    `stop`."""
    started, wall = time.monotonic(), time.time()
    for n in itertools.count():
        if stop.is_set():
            return
        yield n, started + n / rate - time.monotonic(), wall + n / rate


def paced(rate: float, stop: threading.Event) -> Iterator[tuple[int, float]]:
    """Yields (0, due), (1, due)... at `rate` a second (sleeping between), until `stop`; for
    the flows on threads of their own (`paced_async` for those on an event loop). An item is
    stamped `due`: one sent late because the previous send hung (a frozen broker) is late by
    that wait, as an HTTP request held by its limit is."""
    for n, delay, due in _schedule(rate, stop):
        if delay > 0:
            stop.wait(delay)
        yield n, due


async def paced_async(rate: float, stop: threading.Event) -> AsyncIterator[tuple[int, float]]:
    """`paced` for a flow on an event loop, with the time each n was due: it sleeps with
    `asyncio.sleep`, so the flow's requests in flight go on between sends. (`paced`'s blocking
    wait there froze the loop between sends: at WebSub's 5 a second each request advanced one
    step every 0.2 s, 0.6 s of a notification's "latency" was the load's own, and much more
    when a request needed a new connection or its other server after a kill.)"""
    for n, delay, due in _schedule(rate, stop):
        if delay > 0:
            await asyncio.sleep(delay)
        yield n, due


def _address(addr: str, port: int) -> tuple[str, int]:
    """A broker's `host` (on its usual port in the cluster) or `host:port` (a test's)."""
    host, _, given = addr.partition(":")
    return host, int(given) if given else port


class Load:
    def __init__(
        self,
        servers: list[str],
        token: str,
        mqtt: str,
        streams: str,
        kafka: str | None,
        rates: dict[str, float],
        websub_topic: str | None = None,
    ) -> None:
        self.servers = servers
        self.token = token
        self.mqtt, self.streams, self.kafka = mqtt, streams, kafka
        self.websub_topic = websub_topic
        self.stop = threading.Event()
        self.flows = {
            k: Flow(k, r)
            for k, r in rates.items()
            if r and (k != "kafka" or kafka) and (k != "websub" or websub_topic)
        }
        self.threads: list[threading.Thread] = []

    def start(self) -> None:
        runners: dict[str, Callable[[], None]] = {
            "http": lambda: asyncio.run(self._http_async()),
            "sync": lambda: asyncio.run(self._http_sync()),
            "mqtt": self._mqtt,
            "stream": self._stream,
            "kafka": lambda: asyncio.run(self._kafka()),
            "websub": lambda: asyncio.run(self._websub()),
        }
        for kind in self.flows:
            thread = threading.Thread(target=runners[kind], name=f"load-{kind}", daemon=True)
            thread.start()
            self.threads.append(thread)

    def close(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(15)

    # -- HTTP ------------------------------------------------------------------------------
    async def _post(
        self, clients: list[Any], n: int, path: str, body: dict[str, Any], form: bool = False
    ) -> tuple[int, dict[str, Any], int] | None:
        """POST (JSON, or a form) to server n % 2, and to the other one if the first cannot be
        connected to (what a load balancer does): (status, body, the server's index), None if
        no answer came. A plain-text answer comes as `{"text": ...}`."""
        import httpx

        for i in (n % len(clients), (n + 1) % len(clients)):
            try:
                client = clients[i]
                r = await (client.post(path, data=body) if form else client.post(path, json=body))
            except (httpx.ConnectError, httpx.ConnectTimeout):
                continue  # never reached the server: safe to send to the other one
            except httpx.HTTPError:
                return None  # it may have been taken: sending it again would run it twice
            if r.headers.get("content-type", "").startswith("application/json"):
                return r.status_code, (r.json() if r.content else {}), i
            return r.status_code, {"text": r.text}, i
        return None

    def _clients(self, timeout: float) -> list[Any]:
        import httpx

        headers = {"Authorization": f"Bearer {self.token}"}
        return [
            httpx.AsyncClient(base_url=u, timeout=timeout, headers=headers) for u in self.servers
        ]

    async def _requests(
        self,
        kind: str,
        timeout: float,
        out: int,
        path: str,
        body: Callable[[int], dict[str, Any]],
        ok: Callable[[int, tuple[int, dict[str, Any], int]], bool],
        form: bool = False,
    ) -> None:
        """POST `body(n)` to `path` at the flow's rate, at most `out` requests at once; an
        answer `ok(n, answer)` accepted counts as sent (or, for calls, as a success) at the
        time it was due: one waiting for the limit is late already, as one a slow server
        answers late (timed after the wait, an item delayed there looked on time)."""
        flow = self.flows[kind]
        clients = self._clients(timeout)
        gate = asyncio.Semaphore(out)

        async def one(n: int, at: float) -> None:
            try:
                left = time.time()
                answer = await self._post(clients, n, path, body(n), form)
                if answer is None or not ok(n, answer):
                    flow.refused.append(at)
                elif kind == "sync":
                    flow.ok.append((at, time.time()))
                else:
                    flow.accepted(f"{kind[0]}{n}", at, left, answer[2])
            finally:
                gate.release()

        tasks = set()
        watch = asyncio.ensure_future(_watch_lag(flow, self.stop))
        async for n, due in paced_async(flow.rate, self.stop):
            await gate.acquire()
            task = asyncio.ensure_future(one(n, due))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            await asyncio.sleep(0)
        await asyncio.gather(*tasks)
        watch.cancel()

    async def _http_async(self) -> None:
        await self._requests(
            "http",
            5,
            64,
            "/api/v1/functions/load.job/tasks",
            lambda n: {"kwargs": {"n": f"h{n}"}},
            lambda _n, answer: answer[0] == 202,
        )

    async def _http_sync(self) -> None:
        await self._requests(
            "sync",
            10,
            32,
            "/api/v1/functions/load.add/call",
            lambda n: {"kwargs": {"a": n, "b": 1}},
            lambda n, answer: answer[0] == 200 and answer[1].get("result") == n + 1,
        )

    async def _websub(self) -> None:
        """Fat pings to the hub: the content `w<n>` is the notification's id."""
        topic = self.websub_topic
        await self._requests(
            "websub",
            5,
            32,
            "/websub/hub",
            lambda n: {
                "hub.mode": "publish",
                "hub.topic": topic,
                "hub.content": f"w{n}",
                "hub.content_type": "text/plain",
            },
            # 202 without a subscriber stores nothing: the hub said so, not a loss
            lambda _n, answer: answer[0] == 202 and "published to 1 " in answer[1]["text"],
            form=True,
        )

    # -- brokers ---------------------------------------------------------------------------
    def _mqtt(self) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        flow = self.flows["mqtt"]
        pending: dict[int, tuple[str, float, float]] = {}  # mid → (id, due, left), until PUBACK
        # PUBACKs come on paho's thread, which holds paho's lock: a lock of ours taken there
        # and around publish() would deadlock, so the callback only appends (deque is safe)
        acked: collections.deque[int] = collections.deque()
        early: set[int] = set()  # PUBACKs seen before their publish() returned

        def on_publish(_c: object, _u: object, mid: int, _rc: object, _p: object) -> None:
            acked.append(mid)

        def settle() -> None:
            while acked:
                mid = acked.popleft()
                item = pending.pop(mid, None)
                if item:
                    flow.accepted(*item)
                else:
                    early.add(mid)

        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id="cluster-load", protocol=mqtt.MQTTv5
        )
        client.on_publish = on_publish
        client.max_inflight_messages_set(1000)
        client.reconnect_delay_set(0.2, 2)  # type: ignore[arg-type]  # typed int, sleeps a float
        client.connect(self.mqtt, 1883)
        client.loop_start()
        try:
            for n, due in paced(flow.rate, self.stop):
                left = time.time()
                info = client.publish(f"load/{n % 4}", f"q{n}", qos=1)
                if info.rc in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
                    if info.mid in early:
                        early.discard(info.mid)
                        flow.accepted(f"q{n}", due, left)
                    else:
                        pending[info.mid] = (f"q{n}", due, left)
                else:
                    flow.refused.append(due)
                settle()
            time.sleep(3)  # PUBACKs of the last ones
            settle()
        finally:
            client.loop_stop()
            client.disconnect()
            flow.refused.extend(due for _i, due, _left in pending.values())

    def _stream(self) -> None:
        import redis

        flow = self.flows["stream"]
        host, port = _address(self.streams, 6379)
        client = redis.Redis(host, port, socket_timeout=2, socket_connect_timeout=1)
        for n, due in paced(flow.rate, self.stop):
            left = time.time()
            try:
                client.xadd("load", {"data": f"s{n}"})
                flow.accepted(f"s{n}", due, left)
            except redis.RedisError:
                flow.refused.append(due)

    async def _kafka(self) -> None:
        """Each message sent when due, without waiting for the acks of those before (at most
        KAFKA_OUT unacknowledged), stamped when due. (Sent one after another, each stamped
        when its send began, the flow fell behind whenever Tansu answered slowly, and the
        messages due meanwhile looked on time.)"""
        from aiokafka import AIOKafkaProducer

        flow = self.flows["kafka"]
        assert self.kafka is not None
        host, port = _address(self.kafka, 9092)
        producer = AIOKafkaProducer(
            bootstrap_servers=f"{host}:{port}", acks="all", request_timeout_ms=5000
        )
        await producer.start()
        gate = asyncio.Semaphore(KAFKA_OUT)

        async def one(n: int, due: float) -> None:
            try:
                left = time.time()
                await asyncio.wait_for(producer.send_and_wait("load", f"k{n}".encode()), 5)
                flow.accepted(f"k{n}", due, left)
            except Exception:  # noqa: BLE001 - any failure is a refused send
                flow.refused.append(due)
            finally:
                gate.release()

        tasks: set[asyncio.Task[None]] = set()
        try:
            async for n, due in paced_async(flow.rate, self.stop):
                await gate.acquire()
                task = asyncio.ensure_future(one(n, due))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                await asyncio.sleep(0)  # its send starts now, in order
            await asyncio.gather(*tasks)
        finally:
            await producer.stop()


KIND_OF_MARK = {
    "http": "http",
    "mqtt": "mqtt",
    "stream": "stream",
    "kafka": "kafka",
    "websub": "websub",
}


class Marks:
    """The marks file read incrementally: every run of every id, with its time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.runs: dict[str, dict[str, list[float]]] = collections.defaultdict(
            lambda: collections.defaultdict(list)
        )

    def read(self) -> None:
        with self.path.open("rb") as f:
            f.seek(self.offset)
            data = f.read()
        end = data.rfind(b"\n") + 1
        self.offset += end
        for line in data[:end].decode().splitlines():
            parts = line.split()
            if len(parts) == 3:
                self.runs[parts[0]][parts[1]].append(float(parts[2]))

    def dump(self, path: Path, flows: dict[str, Flow]) -> None:
        """Everything sent and run, for a closer look at a run (`--keep`)."""
        import json

        path.write_text(
            json.dumps(
                {
                    "sent": {k: f.sent for k, f in flows.items()},
                    "answered": {k: f.answered for k, f in flows.items()},
                    "left": {k: f.left for k, f in flows.items()},
                    "via": {k: f.via for k, f in flows.items() if f.via},
                    "lags": {k: f.lags for k, f in flows.items() if f.lags},
                    "refused": {k: f.refused for k, f in flows.items()},
                    "sync_ok": flows["sync"].ok if "sync" in flows else [],
                    "runs": self.runs,
                }
            )
        )

    def total(self) -> int:
        """Runs of the load's items (cron ticks go on after the load stops: not counted)."""
        return sum(len(v) for k, runs in self.runs.items() if k != "cron" for v in runs.values())
