"""Scripts in the console: write with a syntax error and see it at its line, fix and publish,
run from the signature's form, publish again with a diff, roll back."""

from __future__ import annotations

import ast

from playwright.sync_api import Page, expect

from .conftest import Console, Screens
from .editor import error_marker_line, replace_code

BROKEN = """import fnhub


@fnhub.api("Total with tax")
def total(prices: list, tax: float = 0.2) -> float:
    print("adding", len(prices) "prices")
    return round(sum(prices) * (1 + tax), 2)
"""
FIXED = BROKEN.replace('len(prices) "prices"', 'len(prices), "prices"')
V2 = FIXED.replace("(1 + tax), 2)", "(1 + tax) * 100)").replace('"adding"', '"v2 adding"')


def syntax_error_line(code: str) -> int:
    try:
        ast.parse(code)
    except SyntaxError as exc:
        assert exc.lineno is not None
        return exc.lineno
    raise AssertionError("the code parses")


def run_total(page: Page, prices: str) -> None:
    page.get_by_label("prices").fill(prices)
    page.get_by_role("button", name="Run", exact=True).click()
    expect(page.get_by_label("Outcome")).to_contain_text("success", timeout=30_000)


def test_write_fix_publish_run_and_roll_back(page: Page, console: Console, screens: Screens):
    page.goto(console.url + "/scripts")
    page.get_by_role("button", name="New script").click()
    page.get_by_label("Name").fill("shop")
    page.get_by_role("button", name="Create").click()
    expect(page.get_by_text("not published yet")).to_be_visible()

    replace_code(page, BROKEN)
    page.get_by_role("button", name="Publish…").click()
    page.get_by_role("dialog").get_by_role("button", name="Publish").click()
    line = syntax_error_line(BROKEN)
    error = page.locator(".publish-error")
    expect(error).to_contain_text(f"Line {line}")
    expect(error).to_contain_text("syntax error")
    assert error_marker_line(page) == line
    screens.shot(page, "scripts-publish-error")

    replace_code(page, FIXED)
    page.get_by_role("button", name="Publish…").click()
    page.get_by_role("dialog").get_by_role("button", name="Publish").click()
    expect(page.get_by_text("Published shop v1")).to_be_visible()
    expect(page.locator(".publish-error")).to_have_count(0)
    expect(page.get_by_text("active: v1")).to_be_visible()
    screens.shot(page, "scripts-editor")

    page.get_by_role("tab", name="Run").click()
    run_total(page, "[10, 20]")
    outcome = page.get_by_label("Outcome")
    expect(outcome.locator(".pre-block", has_text="Result")).to_have_text("Result36")
    expect(outcome.locator(".pre-block", has_text="Logs")).to_contain_text("adding 2 prices")
    expect(outcome).to_contain_text("Run time")
    screens.shot(page, "scripts-run")

    page.get_by_role("tab", name="Code").click()
    replace_code(page, V2)
    page.get_by_role("button", name="Publish…").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("active version v1")
    expect(dialog.locator(".cm-changedLine").first).to_be_visible()
    screens.shot(page, "scripts-publish-diff")
    dialog.get_by_role("button", name="Publish").click()
    expect(page.get_by_text("Published shop v2")).to_be_visible()

    page.get_by_role("tab", name="History").click()
    expect(page.locator("tr", has_text="v2").get_by_text("active")).to_be_visible()
    screens.shot(page, "scripts-history")
    page.get_by_role("button", name="Roll back to v1").click()
    expect(page.get_by_text("Rolled back")).to_be_visible()
    expect(page.locator("tr", has_text="v1").get_by_text("active")).to_be_visible()

    page.get_by_role("tab", name="Run").click()
    run_total(page, "[10, 20]")  # v1 again: 36, where v2 answered 3600
    expect(page.get_by_label("Outcome").locator(".pre-block", has_text="Result")).to_have_text(
        "Result36"
    )
    expect(page.get_by_label("Outcome")).not_to_contain_text("v2 adding")


def test_a_broken_import_is_marked_at_its_line(page: Page, console: Console):
    with console.api() as api:
        ok = api.put("/api/v1/scripts/later", json={"code": "import fnhub\n"})
        assert ok.status_code == 200, ok.text
    page.goto(console.url + "/scripts/later")
    replace_code(page, "import fnhub\n\nvalue = 1\nprint(missing_name)\n")
    page.get_by_role("button", name="Publish…").click()
    page.get_by_role("dialog").get_by_role("button", name="Publish").click()
    expect(page.locator(".publish-error")).to_contain_text("NameError")
    assert error_marker_line(page) == 4


NOTES_V1 = """import fnhub


@fnhub.api("Note")
def note(text: str) -> str:
    return text
"""
NOTES_DRAFT = NOTES_V1.replace("return text", "return text.upper()  # draft one")
NOTES_AUTOSAVED = NOTES_V1.replace("return text", "return text.title()  # autosaved")


def test_drafts_live_on_the_server_until_published(page: Page, console: Console, screens: Screens):
    with console.api() as api:
        assert api.put("/api/v1/scripts/notes", json={"code": NOTES_V1}).status_code == 200
    page.goto(console.url + "/scripts/notes")
    expect(page.get_by_text("active: v1")).to_be_visible()
    replace_code(page, NOTES_DRAFT)
    page.get_by_role("button", name="Save draft").click()
    expect(page.locator(".toolbar").get_by_text("draft saved")).to_be_visible()
    page.reload()
    expect(page.locator(".cm-content")).to_contain_text("# draft one")
    expect(page.locator(".toolbar").get_by_text("draft saved")).to_be_visible()
    tree = page.locator(".tree")
    expect(tree.locator("li", has_text="notes").locator(".badge-draft")).to_be_visible()
    with console.api() as api:
        opened = api.get("/api/v1/scripts/notes").json()
    assert opened["active"]["version"] == 1 and opened["active"]["code"] == NOTES_V1
    assert opened["draft"]["code"] == NOTES_DRAFT and opened["draft"]["base_version"] == 1

    replace_code(page, NOTES_AUTOSAVED)  # no click: saved a moment after the edit
    expect(page.locator(".toolbar").get_by_text("unsaved changes")).to_be_visible()
    expect(page.locator(".toolbar").get_by_text("draft saved")).to_be_visible()
    with console.api() as api:
        assert api.get("/api/v1/scripts/notes/draft").json()["code"] == NOTES_AUTOSAVED
        assert api.get("/api/v1/scripts/notes").json()["active"]["version"] == 1
    screens.shot(page, "scripts-draft")

    page.get_by_role("button", name="New script").click()  # a script that is only a draft
    page.get_by_label("Name").fill("scratch")
    page.get_by_role("button", name="Create").click()
    expect(page.get_by_text("not published yet")).to_be_visible()
    page.reload()
    expect(tree.locator("li", has_text="scratch").locator(".badge-draft")).to_be_visible()

    page.goto(console.url + "/scripts/notes")
    page.get_by_role("button", name="Publish…").click()
    page.get_by_role("dialog").get_by_role("button", name="Publish").click()
    expect(page.get_by_text("Published notes v2")).to_be_visible()
    expect(page.locator(".toolbar .badge-draft")).to_have_count(0)
    with console.api() as api:
        opened = api.get("/api/v1/scripts/notes").json()
    assert opened["active"]["version"] == 2 and opened["active"]["code"] == NOTES_AUTOSAVED
    assert opened["draft"] is None


JS_V1 = """const fnhub = require('fnhub');

exports.shout = fnhub.api({ title: 'Shout' }, async ({ text = 'hi' }) => text.toUpperCase());
"""
JS_BROKEN = JS_V1.replace("text.toUpperCase());", "text.toUpperCase(;\n")
JS_V2 = JS_V1.replace("text.toUpperCase()", "text.toUpperCase() + '!'")


def test_a_javascript_script_is_edited_and_published_as_javascript(page: Page, console: Console):
    with console.api() as api:
        ok = api.put("/api/v1/scripts/loud", json={"code": JS_V1, "language": "javascript"})
        assert ok.status_code == 200, ok.text
    page.goto(console.url + "/scripts/loud")
    expect(page.locator(".tree-script.current")).to_contain_text("JS")
    expect(page.locator(".editor-pane .toolbar")).to_contain_text("JavaScript")
    replace_code(page, JS_BROKEN)
    page.get_by_role("button", name="Publish…").click()
    page.get_by_role("dialog").get_by_role("button", name="Publish").click()
    expect(page.locator(".publish-error")).to_contain_text("syntax error")
    assert error_marker_line(page) == 3
    replace_code(page, JS_V2)
    page.get_by_role("button", name="Publish…").click()
    page.get_by_role("dialog").get_by_role("button", name="Publish").click()
    expect(page.locator(".editor-pane .toolbar")).to_contain_text("active: v2")
    with console.api() as api:
        script = api.get("/api/v1/scripts/loud").json()["active"]
        assert script["language"] == "javascript" and script["version"] == 2
        called = api.post("/api/v1/functions/loud.shout/call", json={"kwargs": {"text": "ok"}})
        assert called.json()["result"] == "OK!", called.text
