"""Data is rendered as text: markup in a function's title and doc, its logs, its result, a task
list, a connector's description and an env variable's value and description never becomes
elements or runs."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from .conftest import Console, Screens

XSS = '''import fnhub


@fnhub.api("<script>window.__pwned = 1</script> title")
def shout(text: str = "<b>bold</b>"):
    """<img src=x onerror="window.__pwned = 3"> doc"""
    print("<script>window.__pwned = 4</script>")
    return {"html": '<img src=x onerror="window.__pwned = 5">'}
'''


def test_markup_in_data_renders_as_text(page: Page, console: Console, screens: Screens):
    with console.api() as api:
        assert api.put("/api/v1/scripts/xss", json={"code": XSS}).status_code == 200
        connector = {
            "type": "mqtt",
            "description": "<script>window.__pwned = 6</script>",
            "settings": {"host": "127.0.0.1"},
        }
        assert api.put("/api/v1/connectors/xss-broker", json=connector).status_code == 200
        env = {
            "value": '<img src=x onerror="window.__pwned = 7">',
            "description": "<script>window.__pwned = 8</script>",
        }
        assert api.put("/api/v1/envs/XSS_ENV", json=env).status_code == 200
    page.goto(console.url + "/scripts/xss/run/shout")
    expect(page.get_by_text("<script>window.__pwned = 1</script> title")).to_be_visible()
    expect(page.get_by_text('<img src=x onerror="window.__pwned = 3"> doc')).to_be_visible()
    page.get_by_role("button", name="Run", exact=True).click()
    outcome = page.get_by_label("Outcome")
    expect(outcome).to_contain_text("success", timeout=30_000)
    expect(outcome.locator("pre").first).to_contain_text('<img src=x onerror=\\"window.__pwned')
    expect(outcome).to_contain_text("<script>window.__pwned = 4</script>")
    screens.shot(page, "text-only-run")
    page.goto(console.url + "/connectors")
    expect(page.get_by_text("<script>window.__pwned = 6</script>")).to_be_visible()
    page.goto(console.url + "/envs")
    expect(page.get_by_text('<img src=x onerror="window.__pwned = 7">')).to_be_visible()
    expect(page.get_by_text("<script>window.__pwned = 8</script>")).to_be_visible()
    page.goto(console.url + "/tasks?function=xss.shout")
    expect(page.locator("table.tasks")).to_contain_text("xss.shout")
    assert page.evaluate("window.__pwned") is None
    assert page.locator("main img, main script, main b").count() == 0
