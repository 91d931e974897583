"""Cron jobs in the console: next fire times, pause and resume, run now, recent runs."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from .conftest import Console, Screens


def test_pause_resume_and_run_a_cron_job(page: Page, console: Console, screens: Screens):
    job = {"id": "nightly", "function": "hello.greet", "expr": "0 3 * * *", "title": "Greet"}
    with console.api() as api:
        assert api.post("/api/v1/cron-jobs", json=job).status_code == 201
    page.goto(console.url + "/cron")
    row = page.get_by_role("row", name="nightly")
    expect(row).to_contain_text("0 3 * * *")
    expect(row).to_contain_text("03:00:00")  # next fire times, in the browser's zone
    row.get_by_role("button", name="Pause").click()
    expect(page.get_by_text("Paused nightly")).to_be_visible()
    expect(row).to_contain_text("paused")
    screens.shot(page, "cron")
    row.get_by_role("button", name="Resume").click()
    expect(row.get_by_text("active")).to_be_visible()
    row.get_by_role("button", name="Run now").click()
    expect(page.get_by_text("Queued a run of nightly")).to_be_visible()
    row.get_by_role("button", name="nightly").click()
    runs = page.locator("tr.expanded")  # re-read every 3 s: records land in batches
    expect(runs.locator("table.tasks")).to_contain_text("hello.greet", timeout=30_000)
