"""The env variables page: a list a page at a time, a form per type whose refusals show the
server's reason at the value, a password that never comes back to the browser yet reaches
`fnhub.env`, edit, delete after a confirmation, the fnhub.yaml marker, and a viewer who reads
and changes nothing."""

from __future__ import annotations

import hashlib
import time

import httpx
from playwright.sync_api import Browser, Locator, Page, expect
from tests.conftest import wait_for

from .conftest import Console, Screens, new_page, sign_in

SECRET = "pw-Tr0ub4dor&3-never-shown"
READER = """import hashlib

import fnhub


@fnhub.api("An env variable's text, or its digest")
def read(name: str, digest: bool = False):
    value = fnhub.env(name)
    return hashlib.sha256(value.encode()).hexdigest() if digest else value
"""


def _new(page: Page, name: str, type_: str = "string") -> Locator:
    """The New variable dialog with its name and type chosen."""
    page.get_by_role("button", name="New variable").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Name").fill(name)
    dialog.get_by_label("Type").select_option(type_)
    return dialog


def _save(page: Page) -> None:
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("button", name="Save").click()
    expect(dialog).to_have_count(0)


def _read(api: httpx.Client, name: str, digest: bool = False) -> object:
    r = api.post(
        "/api/v1/functions/envread.read/call", json={"kwargs": {"name": name, "digest": digest}}
    )
    return r.json()["result"] if r.status_code == 200 else r.text  # e.g. a name not seen yet


def _reaches_scripts(console: Console, name: str, value: object, digest: bool = False) -> None:
    """A worker sees a change within about a second (it polls the envs revision)."""
    with console.api() as api:
        wait_for(lambda: _read(api, name, digest) == value, timeout=15, interval=0.2)


def test_create_edit_and_delete_env_variables(page: Page, console: Console, screens: Screens):
    with console.api() as api:
        assert api.put("/api/v1/scripts/envread", json={"code": READER}).status_code == 200
        made = api.put("/api/v1/envs/PG_BATCH", json={"type": "integer", "value": "500"})
        assert made.status_code == 200, made.text
    page.goto(console.url + "/envs")
    expect(page.get_by_role("heading", name="Env variables", exact=True)).to_be_visible()
    row = page.get_by_role("row", name="PG_BATCH")
    expect(row).to_contain_text("integer")
    expect(row).to_contain_text("500")
    expect(row).to_contain_text("by user:admin")
    expect(row).to_contain_text("API / CLI")

    # a string through the form, then read by a script
    dialog = _new(page, "ERP_URL")
    dialog.get_by_label("Value").fill("https://erp.example.org")
    dialog.get_by_label("Description").fill("the ERP's address")
    _save(page)
    row = page.get_by_role("row", name="ERP_URL")
    expect(row).to_contain_text("https://erp.example.org")
    expect(row).to_contain_text("the ERP's address")
    _reaches_scripts(console, "ERP_URL", "https://erp.example.org")
    dialog = _new(page, "ERP_URL")  # a New form does not replace what is there
    dialog.get_by_label("Value").fill("https://elsewhere.example.org")
    dialog.get_by_role("button", name="Save").click()
    expect(dialog.get_by_role("alert")).to_contain_text("There is an env variable ERP_URL already")
    dialog.get_by_role("button", name="Cancel").click()
    expect(row).to_contain_text("https://erp.example.org")

    # a password: sent once, shown back never, in clear in the worker only
    dialog = _new(page, "ERP_PASSWORD", "password")
    expect(dialog.get_by_label("Value")).to_have_attribute("type", "password")
    dialog.get_by_label("Value").fill(SECRET)
    _save(page)
    row = page.get_by_role("row", name="ERP_PASSWORD")
    expect(row).to_contain_text("*****")
    expect(row).to_contain_text("password")
    digest = hashlib.sha256(SECRET.encode()).hexdigest()
    _reaches_scripts(console, "ERP_PASSWORD", digest, digest=True)
    with console.api() as api:
        assert api.get("/api/v1/envs/ERP_PASSWORD").json()["value"] == "*****"
    # editing its description leaves the password alone: the form sends the mask back
    row.get_by_role("button", name="Edit ERP_PASSWORD").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_label("Value")).to_have_value("")
    expect(dialog.get_by_label("Value")).to_have_attribute("placeholder", "unchanged")
    dialog.get_by_label("Description").fill("the ERP's login")
    _save(page)
    expect(row).to_contain_text("the ERP's login")
    assert SECRET not in page.content()

    # a value its type cannot read: the server's reason, at the value, nothing saved
    dialog = _new(page, "RETRIES", "integer")
    dialog.get_by_label("Value").fill("ten")
    dialog.get_by_role("button", name="Save").click()
    alert = dialog.get_by_role("alert")
    expect(alert).to_have_text("Not saved: 'ten' is not an integer")
    expect(dialog.get_by_label("Value")).to_have_attribute("aria-invalid", "true")
    expect(dialog.get_by_label("Value")).to_have_accessible_description(
        "Not saved: 'ten' is not an integer"
    )
    screens.shot(page, "envs-invalid")
    with console.api() as api:
        assert api.get("/api/v1/envs/RETRIES").status_code == 404
    dialog.get_by_label("Value").fill("3")
    expect(dialog.get_by_label("Value")).not_to_have_attribute("aria-invalid", "true")
    _save(page)
    expect(page.get_by_role("row", name="RETRIES")).to_contain_text("3")
    _reaches_scripts(console, "RETRIES", 3)

    # edit: a boolean picks true / false; json shows its document
    row = page.get_by_role("row", name="PG_BATCH")
    row.get_by_role("button", name="Edit PG_BATCH").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_label("Name")).to_have_count(0)  # a name is not edited
    expect(dialog.get_by_label("Value")).to_have_value("500")
    dialog.get_by_label("Value").fill("250")
    _save(page)
    expect(row).to_contain_text("250")
    _reaches_scripts(console, "PG_BATCH", 250)
    row.get_by_role("button", name="Edit PG_BATCH").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Type").select_option("json")
    dialog.get_by_label("Value").fill('{"max": 3, "names": ["a"]}')
    _save(page)
    expect(row).to_contain_text("json")
    _reaches_scripts(console, "PG_BATCH", {"max": 3, "names": ["a"]})
    dialog = _new(page, "DRY_RUN", "boolean")
    dialog.get_by_label("Value").select_option("true")
    _save(page)
    _reaches_scripts(console, "DRY_RUN", True)
    time.sleep(1.5)  # every worker process has reloaded since the password's edit
    with console.api() as api:  # kept, not replaced by the mask the form sent
        assert _read(api, "ERP_PASSWORD", digest=True) == digest
    screens.shot(page, "envs")

    # delete after a confirmation that names it
    row = page.get_by_role("row", name="RETRIES")
    with page.expect_event("dialog") as asked:
        row.get_by_role("button", name="Delete RETRIES").click()
    assert "Delete env variable RETRIES?" in asked.value.message
    expect(page.get_by_text("Deleted RETRIES")).to_be_visible()
    expect(page.get_by_role("row", name="RETRIES")).to_have_count(0)
    with console.api() as api:
        assert api.get("/api/v1/envs/RETRIES").status_code == 404
        entries = api.get("/api/v1/audit", params={"resource": "env:ERP_PASSWORD"}).json()
    assert SECRET not in str(entries)

    # the name filter, as on the other named lists
    page.get_by_role("searchbox", name="Filter").fill("erp_")
    expect(page.locator("table.table > tbody > tr")).to_have_count(2)
    expect(page.get_by_role("row", name="PG_BATCH")).to_have_count(0)


def test_variables_fnhub_yaml_declares_are_marked(page: Page, console: Console):
    project = console.project / "fnhub.yaml"
    project.write_text(
        project.read_text() + "\nenvs:\n  REGION: {value: eu-west, description: from the file}\n"
    )
    applied = console.fnhub("apply")
    assert applied.returncode == 0, applied.stderr
    page.goto(console.url + "/envs")
    row = page.get_by_role("row", name="REGION")
    expect(row.get_by_text("fnhub.yaml")).to_be_visible()
    expect(row).to_contain_text("by project")
    row.get_by_role("button", name="Edit REGION").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("fnhub.yaml declares this variable")
    dialog.get_by_role("button", name="Cancel").click()
    with page.expect_event("dialog") as asked:
        row.get_by_role("button", name="Delete REGION").click()
    assert "the next apply creates it again" in asked.value.message
    expect(page.get_by_role("row", name="REGION")).to_have_count(0)
    assert console.fnhub("apply").returncode == 0
    page.reload()
    expect(page.get_by_role("row", name="REGION").get_by_text("fnhub.yaml")).to_be_visible()


def test_a_viewer_reads_env_variables_and_changes_none(browser: Browser, console: Console):
    with console.api() as api:
        r = api.post(
            "/api/v1/users",
            json={"username": "envviewer", "password": "viewer password 2", "role": "viewer"},
        )
        assert r.status_code == 201, r.text
        assert api.put("/api/v1/envs/SHOWN", json={"value": "to all"}).status_code == 200
    page = new_page(browser)
    sign_in(page, console, "envviewer", "viewer password 2")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Env variables").click()
    row = page.get_by_role("row", name="SHOWN")
    expect(row).to_contain_text("to all")
    expect(page.get_by_text("read-only (viewer")).to_be_visible()
    expect(page.get_by_role("button", name="New variable")).to_have_count(0)
    expect(row.get_by_role("button")).to_have_count(0)
    csrf = page.request.get(console.url + "/api/v1/session").json()["csrf_token"]
    refused = page.request.put(
        console.url + "/api/v1/envs/SHOWN", data={"value": "x"}, headers={"X-CSRF-Token": csrf}
    )
    assert refused.status == 403
    page.context.close()


def test_the_env_variables_page_pages_and_filters(page: Page, console: Console):
    names = [f"PAGED_ENV_{i:03d}" for i in range(101)]
    with console.api() as api:
        for name in names:
            assert api.put(f"/api/v1/envs/{name}", json={"value": name.lower()}).status_code == 200
    try:
        page.goto(console.url + "/envs")
        page.get_by_label("Filter").fill("paged_env")
        expect(page.get_by_text("101 matching")).to_be_visible()
        rows = page.locator("table tbody tr")
        expect(rows).to_have_count(100)
        expect(rows.first).to_contain_text("paged_env_000")
        page.get_by_role("button", name="Next").click()
        expect(rows).to_have_count(1)
        expect(rows.first).to_contain_text("PAGED_ENV_100")
        page.get_by_role("button", name="Previous").click()
        expect(rows).to_have_count(100)
    finally:
        with console.api() as api:
            for name in names:
                api.delete(f"/api/v1/envs/{name}")
