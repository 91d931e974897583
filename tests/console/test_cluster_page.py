"""The Cluster page: `fnhub serve`'s server, worker and beat plus two `fnhub beat`s, one of them
killed with SIGKILL: every role listed, the leader marked, the dead beat marked stale, the Redis
and database facts shown (docs/console/cluster.png is this page)."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect
from tests.conftest import wait_for

from .conftest import Console, Screens


@pytest.fixture
def beats(console: Console) -> Iterator[list[subprocess.Popen[bytes]]]:
    started = [
        subprocess.Popen(
            [sys.executable, "-m", "fnhub.cli", "beat"],
            cwd=console.project,
            env=console.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(2)
    ]
    yield started
    for beat in started:
        if beat.poll() is None:
            beat.send_signal(signal.SIGTERM)
            beat.wait(30)


def test_cluster_page_shows_every_role_the_leader_and_a_stale_beat(
    page: Page, console: Console, screens: Screens, beats: list[subprocess.Popen[bytes]]
) -> None:
    with console.api() as api:

        def listed() -> dict:
            data = api.get("/api/v1/cluster").json()
            return data if {b.pid for b in beats} <= {m["pid"] for m in data["beats"]} else {}

        data = wait_for(listed, timeout=30)
        standby = next(
            b for b in beats if b.pid not in {m["pid"] for m in data["beats"] if m["leading"]}
        )
        dead = next(m for m in data["beats"] if m["pid"] == standby.pid)
    standby.send_signal(signal.SIGKILL)
    standby.wait()
    page.set_viewport_size({"width": 1280, "height": 920})
    page.goto(console.url + "/cluster")
    expect(page.get_by_role("heading", name="Cluster", exact=True)).to_be_visible()
    for heading in ("Servers", "Beats", "Workers", "Redis", "Database"):
        expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
    expect(page.get_by_role("link", name="Cluster")).to_be_visible()  # in the navigation
    beats_table = page.locator("table").nth(1)
    expect(beats_table.get_by_text("leading", exact=True)).to_have_count(1)
    expect(beats_table.get_by_text("standing by", exact=True)).to_have_count(2)
    expect(page.locator("table").nth(0)).to_contain_text(console.url)  # the server's address
    # the killed beat misses three 2-second heartbeats: marked stale at the next refresh
    dead_row = page.get_by_role("row").filter(has_text=dead["id"])
    expect(dead_row.get_by_text("stale", exact=True)).to_be_visible(timeout=15_000)
    expect(page.locator(".stat", has_text="stale members")).to_contain_text("1")
    expect(page.locator("dl.facts").first).to_contain_text("master")
    expect(page.locator("dl.facts").nth(1)).to_contain_text("sqlite")
    expect(page.locator("dl.facts").nth(1).get_by_text("newest", exact=True)).to_be_visible()
    screens.shot(page, "cluster")
