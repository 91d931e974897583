"""A project with a thousand functions: the script tree draws only what is open or matches (never
more than a few hundred rows), and filtering it stays quick."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from .conftest import Console

SCRIPTS, PER_SCRIPT = 10, 100
ROWS_AT_MOST = 300  # ScriptTree.jsx LIMIT
FILTER_MS = """async (text) => {
  const input = document.querySelector('.tree input');
  const started = performance.now();
  input.value = text;
  input.dispatchEvent(new Event('input', { bubbles: true }));
  await new Promise((done) => requestAnimationFrame(() => setTimeout(done)));
  return performance.now() - started;
}"""


def _script(i: int) -> str:
    functions = "".join(
        f'\n\n@fnhub.api("f {i} {j}")\ndef fn_{i:02d}_{j:03d}(x: int = 0) -> int:\n    return x\n'
        for j in range(PER_SCRIPT)
    )
    return "import fnhub\n" + functions


def test_a_thousand_functions_keep_the_tree_small_and_quick(page: Page, console: Console):
    with console.api() as api:
        for i in range(SCRIPTS):
            r = api.put(f"/api/v1/scripts/bulk{i:02d}", json={"code": _script(i)})
            assert r.status_code == 200, r.text
    page.goto(console.url + "/scripts")
    tree = page.locator(".tree")
    expect(tree.locator(".tree-script", has_text="bulk09")).to_be_visible()
    assert tree.locator(".tree-fn").count() == 0  # all closed: no function drawn

    spent = page.evaluate(FILTER_MS, "fn_")  # matches all 1,000
    expect(tree.get_by_text("more not shown")).to_be_visible()
    assert tree.locator("li").count() <= ROWS_AT_MOST + SCRIPTS
    assert spent < 1000, f"filtering took {spent:.0f} ms"

    page.evaluate(FILTER_MS, "fn_07_042")
    expect(tree.locator(".tree-fn")).to_have_count(1)
    tree.locator(".tree-fn").click()
    expect(page.get_by_role("heading", name="bulk07.fn_07_042")).to_be_visible()

    page.evaluate(FILTER_MS, "")
    expect(tree.locator(".tree-fn")).to_have_count(PER_SCRIPT)  # the open script's, only
    tree.get_by_role("button", name="Open bulk03").click()
    expect(tree.locator(".tree-fn")).to_have_count(2 * PER_SCRIPT)
