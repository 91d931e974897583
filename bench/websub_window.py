"""One WebSub subscription's delivery rate: a backlog to one slow callback, drained with each
delivery window, all in the same run (so the ratios hold on a busy machine).

The hub is a real fnhub server (`tests/websub/hubproc.py`, machine's Redis, temporary SQLite);
the callback runs in this process (uvicorn) and answers every POST after `--delay` seconds. Per
window: subscribe, hold the callback, store `--notifications` notifications (as a script
publishes them), release it and time until all have arrived. `--main-src PATH` adds a row for
another checkout's hub (e.g. /work/main/src: the code before the window, one at a time).

    python bench/websub_window.py --notifications 400 --delay 0.05 --windows 1,4,8 [--save]
"""

from __future__ import annotations

import sys
from pathlib import Path

if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)  # bench/queue.py would shadow the standard library's queue

import argparse
import asyncio
import json
import os
import subprocess
import tempfile
import time
import uuid
from typing import Any

import httpx
import redis
import uvicorn

from fnhub.config import Settings

ROOT = Path(__file__).resolve().parent.parent
HUBPROC = ROOT / "tests" / "websub" / "hubproc.py"
RESULTS = ROOT / "bench" / "results" / "websub_window.json"
TOPIC = "https://bench.example/window-topic"

sys.path.insert(0, str(ROOT / "tests" / "websub"))
from harness import bound_socket, prepare_server, script_publish  # noqa: E402


class Callback:
    """Echoes challenges; answers notifications 200 after `delay`, once `open` is set."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.open = asyncio.Event()
        self.received = 0
        self.in_flight = 0
        self.most_in_flight = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        answer = b""
        if scope["method"] == "GET":
            query = dict(
                p.split("=", 1) for p in scope["query_string"].decode().split("&") if "=" in p
            )
            answer = query.get("hub.challenge", "").encode()
        else:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            await self.open.wait()
            await asyncio.sleep(self.delay)
            self.in_flight -= 1
            self.received += 1
        length = [(b"content-length", str(len(answer)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": length})
        await send({"type": "http.response.body", "body": answer})


async def drain(window: int | None, args: argparse.Namespace, src: str) -> dict[str, Any]:
    """One hub with this window (None: the other checkout's default), one backlog, timed."""
    callback = Callback(args.delay)
    sock = bound_socket()
    config = uvicorn.Config(callback, log_level="warning", lifespan="off")
    receiver = uvicorn.Server(config)
    served = asyncio.create_task(receiver.serve(sockets=[sock]))
    tmp = Path(tempfile.mkdtemp())
    sock_hub = bound_socket()
    hub_port = sock_hub.getsockname()[1]
    sock_hub.close()
    settings = Settings(
        data_dir=tmp,
        redis_url=args.redis_url,
        db_url=f"sqlite:///{tmp / 'bench.db'}",
        key_prefix=f"bench-{uuid.uuid4().hex[:8]}",
        port=hub_port,
        access_log=False,
        websub_hub_url=f"http://127.0.0.1:{hub_port}/websub/hub",
        websub_allow_networks=["127.0.0.0/8"],
        websub_open=True,
        websub_stream_max_len=max(10_000, args.notifications),
        **({"websub_delivery_window": window} if window is not None else {}),
    )
    prepare_server(settings)
    dumped = settings.model_dump_json(exclude=None if window else {"websub_delivery_window"})
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, *sys.path])}
    env["HUBPROC_LOG_LEVEL"] = "WARNING"
    hub = subprocess.Popen([sys.executable, str(HUBPROC), dumped], env=env)
    http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{hub_port}", timeout=30)
    try:
        for _ in range(600):
            try:
                if (await http.get("/websub/hub")).status_code == 200:
                    break
            except httpx.HTTPError:
                await asyncio.sleep(0.05)
        r = await http.post(
            "/websub/hub",
            data={
                "hub.mode": "subscribe",
                "hub.topic": TOPIC,
                "hub.callback": f"http://127.0.0.1:{sock.getsockname()[1]}/cb",
            },
        )
        r.raise_for_status()
        owned = f"{settings.key_prefix}:websub:cursors"
        client = redis.Redis.from_url(args.redis_url)
        while not client.hlen(owned):  # verified, and the deliverer has its cursor
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)
        script_publish(settings, TOPIC, [f"n{i}" for i in range(args.notifications)])
        load = os.getloadavg()[0]
        started = time.monotonic()
        callback.open.set()
        while callback.received < args.notifications:
            await asyncio.sleep(0.01)
            if time.monotonic() - started > args.timeout:
                break
        elapsed = time.monotonic() - started
        return {
            "window": window if window is not None else "main",
            "notifications": callback.received,
            "seconds": round(elapsed, 2),
            "per_second": round(callback.received / elapsed, 1),
            "most_in_flight": callback.most_in_flight,
            "load_average": round(load, 2),
        }
    finally:
        await http.aclose()
        hub.terminate()
        hub.wait(20)
        receiver.should_exit = True
        await served
        client = redis.Redis.from_url(args.redis_url)
        keys = list(client.scan_iter(match=f"{settings.key_prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


async def main(args: argparse.Namespace) -> None:
    runs: list[dict[str, Any]] = []
    if args.main_src:
        runs.append(await drain(None, args, args.main_src))
    for window in (int(w) for w in args.windows.split(",")):
        runs.append(await drain(window, args, str(ROOT / "src")))
    base = next((r for r in runs if r["window"] in (1, "main")), runs[0])
    print(f"\none subscription, {args.notifications} notifications, callback {args.delay}s")
    print(f"{'window':>8} {'seconds':>8} {'per s':>8} {'vs base':>7} {'in flight':>9} {'load':>5}")
    for r in runs:
        r["vs_base"] = round(r["per_second"] / base["per_second"], 2)
        print(
            f"{r['window']!s:>8} {r['seconds']:>8} {r['per_second']:>8} {r['vs_base']:>7}"
            f" {r['most_in_flight']:>9} {r['load_average']:>5}"
        )
    result = {"notifications": args.notifications, "delay": args.delay, "runs": runs}
    if args.save:
        RESULTS.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--notifications", type=int, default=400)
    parser.add_argument("--delay", type=float, default=0.05, help="the callback's answer time")
    parser.add_argument("--windows", default="1,4,8")
    parser.add_argument("--main-src", default="", help="also run this checkout's hub (its src)")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--save", action="store_true")
    asyncio.run(main(parser.parse_args()))
