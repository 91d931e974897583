"""Task records and dead letters in the console: a function that fails with `dead_letter=True`,
its failures found by their error text, its dead letters inspected, one discarded, one replayed
after the fix (the new run's record with its attempts), the rest replayed and discarded by
filter after a confirmation that counts them; the task list paged with cursors and following
the live feed."""

from __future__ import annotations

import httpx
from playwright.sync_api import Page, expect
from tests.conftest import wait_for

from .conftest import Console, Screens

FRAGILE = """import fnhub


@fnhub.api("Ship an order", dead_letter=True)
def ship(order: int):
    print("shipping", order)
    raise KeyError(f"no address for order {order}")
"""
FIXED = FRAGILE.replace(
    'raise KeyError(f"no address for order {order}")', 'return {"shipped": order}'
)


def _failed_call(api: httpx.Client, order: int) -> str:
    """Call orders.ship (it fails); its task id. Retried while workers learn the script."""

    def call() -> str | None:
        r = api.post("/api/v1/functions/orders.ship/call", json={"kwargs": {"order": order}})
        error = r.json().get("error", {})
        return error.get("task_id") if error.get("error_type") == "KeyError" else None

    return wait_for(call, timeout=20, interval=0.5)


def test_dead_letters_inspected_replayed_after_a_fix_and_discarded(
    page: Page, console: Console, screens: Screens
):
    with console.api() as api:
        assert api.put("/api/v1/scripts/orders", json={"code": FRAGILE}).status_code == 200
        ids = [_failed_call(api, order) for order in (1, 2, 3, 4)]
        wait_for(
            lambda: len(api.get("/api/v1/dead-letters?function=orders.ship").json()["items"]) == 4
        )
    # the failures, found by their error text
    page.goto(console.url + "/tasks")
    page.get_by_label("Error text").fill("no address for order 3")
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(console.url + "/tasks?q=no+address+for+order+3")
    expect(page.locator("table.tasks tbody tr")).to_have_count(1)
    expect(page.locator("table.tasks")).to_contain_text("KeyError")

    page.goto(console.url + "/dead-letters?function=orders.ship")
    rows = page.locator("table.dead-letters tbody tr")
    expect(rows).to_have_count(4)
    rows.filter(has_text=ids[1]).get_by_role("button", name="Inspect").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("KeyError: 'no address for order 2'")
    expect(dialog.locator(".pre-block", has_text="Arguments")).to_contain_text('"order": 2')
    screens.shot(page, "dead-letter")
    dialog.get_by_role("button", name="Close").click()

    rows.filter(has_text=ids[0]).get_by_role("button", name="Discard").click()  # confirm: yes
    expect(page.get_by_text("Discarded")).to_be_visible()
    expect(rows).to_have_count(3)
    screens.shot(page, "dead-letters")

    with console.api() as api:  # the fix; a replay runs the active version
        assert api.put("/api/v1/scripts/orders", json={"code": FIXED}).status_code == 200
    rows.filter(has_text=ids[1]).get_by_role("button", name="Replay").click()
    notice = page.get_by_role("status").filter(has_text="Replayed as task")
    notice.get_by_role("link").click()
    expect(page.get_by_role("heading", name="Task ")).to_be_visible()
    expect(page.locator("dl.facts.wide")).to_contain_text("success", timeout=20_000)
    outcome = page.get_by_label("Outcome")
    expect(outcome.locator(".pre-block", has_text="Result")).to_contain_text('"shipped": 2')
    expect(page.locator("dl.facts.wide").get_by_role("link", name=ids[1])).to_be_visible()
    expect(page.get_by_label("Attempts")).to_contain_text("#1")
    screens.shot(page, "task-replayed")

    # the rest by filter, after a confirmation that counts them
    page.goto(console.url + f"/dead-letters?q={ids[2]}")
    expect(rows).to_have_count(1)
    page.get_by_role("button", name="Replay matching…").click()
    dialog = page.get_by_role("dialog")
    question = dialog.locator(".bulk-question")
    expect(question).to_contain_text(f"Replay 1 dead letter matching q = {ids[2]}")
    dialog.get_by_role("button", name="Replay 1").click()
    expect(dialog).to_contain_text("1 replayed")
    dialog.get_by_role("button", name="Done").click()
    expect(page.get_by_text("No dead letters match")).to_be_visible()

    page.goto(console.url + "/dead-letters?function=orders.ship")
    expect(rows).to_have_count(1)
    page.get_by_role("button", name="Discard matching…").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.locator(".bulk-question")).to_contain_text(
        "Discard 1 dead letter matching function = orders.ship"
    )
    screens.shot(page, "dead-letters-bulk")
    dialog.get_by_role("button", name="Discard 1").click()
    expect(dialog).to_contain_text("1 discarded")
    dialog.get_by_role("button", name="Done").click()
    expect(page.get_by_text("No dead letters match")).to_be_visible()


def test_task_pages_follow_cursors_and_the_live_feed(page: Page, console: Console):
    with console.api() as api:
        for i in range(55):
            r = api.post("/api/v1/functions/hello.add/tasks", json={"kwargs": {"a": i, "b": 1}})
            assert r.status_code == 202, r.text

        def recorded() -> bool:
            listed = api.get("/api/v1/tasks", params={"function": "hello.add", "limit": 1})
            return listed.json()["total"] >= 55

        wait_for(recorded, timeout=30, interval=0.3)
    page.goto(console.url + "/tasks?function=hello.add")
    rows = page.locator("table.tasks tbody tr")
    expect(rows).to_have_count(50)
    pager = page.locator(".pager")
    expect(pager).to_contain_text("page 1")
    expect(pager).to_contain_text("matching")
    page.get_by_role("button", name="Older").click()
    expect(pager).to_contain_text("page 2")
    expect(rows).not_to_have_count(50)
    page.get_by_role("button", name="Newer").click()
    expect(pager).to_contain_text("page 1")
    expect(rows).to_have_count(50)

    page.get_by_label("Live").check()
    with console.api() as api:
        new = api.post("/api/v1/functions/hello.add/call", json={"kwargs": {"a": 7, "b": 0}})
    newest = page.locator("table.tasks tbody tr").first
    expect(newest.locator(f'a[href="/tasks/{new.json()["id"]}"]')).to_be_visible(timeout=15_000)
