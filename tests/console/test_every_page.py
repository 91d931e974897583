"""Every page of the console opens without an error and is photographed at 1280x800."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from .conftest import Console, Screens

PAGES = [
    ("/", "Overview", "overview"),
    ("/scripts/hello", "Scripts", "scripts"),
    ("/scripts/hello/run/greet", "Scripts", "scripts-run-form"),
    ("/tasks", "Tasks", "tasks"),
    ("/dead-letters", "Dead letters", "dead-letters-page"),
    ("/envs", "Env variables", "env-variables"),
    ("/connectors", "Connectors", "connectors"),
    ("/subscriptions", "Subscriptions, rules and routes", "subscriptions"),
    ("/cron", "Cron jobs", "cron-jobs"),
    ("/endpoints", "Endpoints", "endpoints"),
    ("/hub/topics", "WebSub hub", "hub-topics"),
    ("/hub/subscribers", "WebSub hub", "hub-subscribers"),
    ("/hub/dead-letters", "WebSub hub", "hub-dead-letters"),
    ("/keys", "API keys", "keys"),
    ("/users", "Users", "users"),
    ("/audit", "Audit log", "audit-log"),
]


def test_every_page_opens(page: Page, console: Console, screens: Screens):
    endpoint = {
        "function": "hello.greet",
        "auth": {"type": "token", "field": "X-Token", "token": "s3cret-token"},
        "throttle": {"second": 5},
    }
    with console.api() as api:
        assert api.put("/api/v1/endpoints/greet", json=endpoint).status_code == 200
        for name in ("ada", "grace"):
            api.post("/api/v1/functions/hello.greet/call", json={"kwargs": {"name": name}})
    for path, heading, name in PAGES:
        page.goto(console.url + path)
        expect(page.get_by_role("heading", name=heading, exact=True).first).to_be_visible()
        expect(page.get_by_text("Loading")).to_have_count(0)
        if path == "/":
            expect(page.get_by_text("live · updated")).to_be_visible()
        screens.shot(page, name)
    page.goto(console.url + "/endpoints")
    curl = page.locator("section.endpoint", has_text="/e/greet").locator(".curl")
    expect(curl).to_contain_text("X-Token: <token>")
    expect(curl).not_to_contain_text("s3cret-token")
    page.goto(console.url + "/no/such/page")
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
