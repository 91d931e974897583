"""A hub killed (SIGKILL) in the middle of a backlog resumes after restart: nothing is missing."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from .harness import eventually, prepare_server, script_publish
from .test_conformance import subscribe, topic_url

HUBPROC = Path(__file__).parent / "hubproc.py"


class HubProcess:
    def __init__(self, settings) -> None:
        self.settings = settings
        self.url = settings.websub_hub_url
        self.http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.port}", timeout=10)
        self.admin = {"Authorization": f"Bearer {prepare_server(settings)}"}
        self.proc: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        self.proc = subprocess.Popen(
            [sys.executable, str(HUBPROC), self.settings.model_dump_json()], env=env
        )
        await eventually(self._up, timeout=40)  # a loaded machine imports slowly

    async def _up(self) -> bool:
        try:
            return (await self.http.get("/websub/hub")).status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    async def post(self, **params: str) -> httpx.Response:
        return await self.http.post("/websub/hub", data=params)

    async def subscriptions(self, **params: str):
        r = await self.http.get("/api/v1/websub/subscriptions", params=params, headers=self.admin)
        r.raise_for_status()
        return r.json()


@pytest.mark.parametrize("window", [1, 4])
async def test_kill_mid_backlog_then_restart_delivers_everything(hub_settings, subscribers, window):
    """Nothing lost; with a window of 1 order holds and at most the one in flight is repeated,
    with a window of 4 at most the 4 in flight are (the cursor moves over finished prefixes)."""
    hub = HubProcess(hub_settings.model_copy(update={"websub_delivery_window": window}))
    await hub.start()
    try:
        topic = topic_url(subscribers)
        cb = await subscribe(hub, subscribers, "survivor", topic)
        cb.delay = 0.01 * window
        total = 300
        script_publish(hub_settings, topic, [f"m{i}" for i in range(total)])
        await eventually(lambda: len(cb.notices) >= 40)
        hub.kill()
        at_kill = len(cb.notices)
        assert at_kill < total  # killed mid-backlog
        await asyncio.sleep(0.3)
        await hub.start()
        await eventually(lambda: len({n.body for n in cb.notices}) == total, timeout=30)
        await asyncio.sleep(0.3)  # anything sent twice has arrived
        bodies = cb.bodies()
        assert {b.decode() for b in bodies} == {f"m{i}" for i in range(total)}
        assert len(bodies) - total <= window
        if window == 1:  # order kept; at most the one in flight at the kill is repeated
            deduped = [b for i, b in enumerate(bodies) if i == 0 or b != bodies[i - 1]]
            assert deduped == [f"m{i}".encode() for i in range(total)]
    finally:
        if hub.proc and hub.proc.poll() is None:
            hub.proc.terminate()
            hub.proc.wait(10)
        await hub.http.aclose()
