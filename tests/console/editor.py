"""Driving the console's CodeMirror editor from Playwright."""

from __future__ import annotations

import re

from playwright.sync_api import Page


def replace_code(page: Page, code: str) -> None:
    """Select everything in the editor and type `code` over it (as a paste: no auto-indent)."""
    content = page.locator(".cm-content").first
    content.click()
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    page.keyboard.insert_text(code)


def error_marker_line(page: Page) -> int:
    """The line number beside the editor's error marker (the gutter rows line up)."""
    marker = page.locator(".cm-lint-marker-error").first.bounding_box()
    assert marker is not None
    numbers = page.locator(".cm-lineNumbers .cm-gutterElement")
    for i in range(numbers.count()):
        box = numbers.nth(i).bounding_box()
        text = numbers.nth(i).inner_text().strip()
        if box and re.fullmatch(r"\d+", text) and abs(box["y"] - marker["y"]) < 4:
            return int(text)
    raise AssertionError("no line number beside the error marker")
