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
