"""The WebSub subscriber of `bench/cluster.py`, a process of its own on host `subscriber`.

It answers the hub's verification GET with the challenge and each delivery (a POST whose body
is the notification's id) with 204, after appending `websub <id> <time>` to the run's marks file
in one O_APPEND write, as the load's functions do: deliveries are counted like runs (never
delivered = lost, delivered twice = run twice). In a process of its own, not in the load's
threads: the hub sends a subscription's notifications one at a time, so a receiver slowed by
the load's other work would show as the hub's latency.

    python bench/clusterlib/subscriber.py HOST PORT MARKS
"""

from __future__ import annotations

import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


def serve(host: str, port: int, marks: str) -> None:
    fd = os.open(marks, os.O_WRONLY | os.O_APPEND)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: the hub's pooled connections stay open

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            query = parse_qs(urlsplit(self.path).query)
            self._answer(200, query.get("hub.challenge", [""])[0].encode())

        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            os.write(fd, f"websub {data.decode()} {time.time():.3f}\n".encode())
            self._answer(204, b"")

        def _answer(self, status: int, body: bytes) -> None:
            self.send_response(status)
            if status != 204:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    server.serve_forever()


def subscribe(server: str, token: str, topic: str, callback: str, timeout: float = 60) -> None:
    """Subscribe through `server`'s hub and wait until the subscription is active (verified)."""
    import httpx

    headers = {"Authorization": f"Bearer {token}"}
    answer = httpx.post(
        f"{server}/websub/hub",
        data={"hub.mode": "subscribe", "hub.topic": topic, "hub.callback": callback},
        headers=headers,
        timeout=10,
    )
    if answer.status_code != 202:
        raise RuntimeError(f"WebSub subscribe: HTTP {answer.status_code} {answer.text}")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = httpx.get(
            f"{server}/api/v1/websub/subscriptions",
            params={"topic": topic, "state": "active"},
            headers=headers,
            timeout=10,
        ).json()
        items = rows.get("items", rows) if isinstance(rows, dict) else rows
        if any(r.get("callback") == callback for r in items):
            return
        time.sleep(0.2)
    raise RuntimeError(f"the hub did not verify the WebSub subscription in {timeout}s")


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]), sys.argv[3])
