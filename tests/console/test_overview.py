"""The overview follows the live feed: a function's calls show up without a reload, and two
tabs of one browser share one stream (the server counts one client)."""

from __future__ import annotations

from playwright.sync_api import Page, expect
from tests.conftest import wait_for

from .conftest import Console, Screens

TALLY = """import fnhub


@fnhub.api("Count")
def count(n: int) -> int:
    return n
"""
CALLS = 7


def test_the_overview_follows_the_feed_in_one_stream_per_browser(
    page: Page, console: Console, screens: Screens
):
    page.goto(console.url + "/")
    functions = page.get_by_role("table", name="Functions in the last hour")
    expect(page.get_by_text("live · updated")).to_be_visible()
    with console.api() as api:
        assert api.put("/api/v1/scripts/tally", json={"code": TALLY}).status_code == 200
        for n in range(CALLS):
            wait_for(
                lambda n=n: (
                    api.post(
                        "/api/v1/functions/tally.count/call", json={"kwargs": {"n": n}}
                    ).status_code
                    == 200
                ),
                timeout=20,
                interval=0.3,
            )
    row = functions.get_by_role("row", name="tally.count")
    expect(row.locator("td").nth(1)).to_have_text(str(CALLS), timeout=15_000)  # no reload
    second = page.context.new_page()
    second.goto(console.url + "/")
    expect(
        second.get_by_role("table", name="Functions in the last hour").get_by_role(
            "row", name="tally.count"
        )
    ).to_be_visible()
    with console.api() as api:
        wait_for(lambda: api.get("/api/v1/overview").json()["feed"]["clients"] == 1, timeout=10)
    second.close()
    screens.shot(page, "overview")


BEAT = """import fnhub


@fnhub.api("Beat")
def beat(n: int) -> int:
    return n
"""


def _call_beat(console: Console, times: int) -> None:
    with console.api() as api:
        for n in range(times):
            wait_for(
                lambda n=n: (
                    (
                        api.post("/api/v1/functions/beat.beat/call", json={"kwargs": {"n": n}})
                    ).status_code
                    == 200
                ),
                timeout=20,
                interval=0.3,
            )


def test_a_frozen_tab_reading_the_feed_is_taken_over(page: Page, console: Console):
    """The tab holding the shared stream is frozen (not closed: it keeps its Web Lock); the
    other tab hears no beat, takes the lock over and keeps getting live updates. (Headless
    Chromium accepts `Page.setWebLifecycleState` frozen for a visible page but keeps running
    it: stopping its scripts is what a frozen tab looks like to the others.)"""
    with console.api() as api:
        assert api.put("/api/v1/scripts/beat", json={"code": BEAT}).status_code == 200
    _call_beat(console, 1)
    page.goto(console.url + "/")  # the first tab reads the stream
    row = page.get_by_role("table", name="Functions in the last hour").get_by_role(
        "row", name="beat.beat"
    )
    expect(row.locator("td").nth(1)).to_have_text("1", timeout=15_000)
    second = page.context.new_page()
    second.goto(console.url + "/")
    other = second.get_by_role("table", name="Functions in the last hour").get_by_role(
        "row", name="beat.beat"
    )
    expect(other.locator("td").nth(1)).to_have_text("1", timeout=15_000)
    with console.api() as api:
        wait_for(lambda: api.get("/api/v1/overview").json()["feed"]["clients"] == 1, timeout=10)
    cdp = page.context.new_cdp_session(page)
    cdp.send("Emulation.setScriptExecutionDisabled", {"value": True})
    _call_beat(console, 2)
    expect(other.locator("td").nth(1)).to_have_text("3", timeout=20_000)  # 4-5 s, then live
    cdp.send("Emulation.setScriptExecutionDisabled", {"value": False})  # awake: it follows
    _call_beat(console, 1)
    expect(row.locator("td").nth(1)).to_have_text("4", timeout=15_000)  # fed by the second tab
    expect(other.locator("td").nth(1)).to_have_text("4", timeout=15_000)
    second.close()
