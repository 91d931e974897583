"""Forms instead of JSON: a connector with a secret the browser never gets back and that an edit
keeps, a route loop refused with the cycle check's message, a cron job with arguments, an
endpoint whose token survives an edit and whose curl line asks for the caller's argument; the
audit log page filtered to what changed."""

from __future__ import annotations

import httpx
from playwright.sync_api import Page, expect

from .conftest import Console, Screens

SECRET = "s3cret-broker-pw"
TOKEN = "endpoint-token-42"


def _save(page: Page) -> None:
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("button", name="Save").click()
    expect(dialog).to_have_count(0)


def test_connector_form_keeps_a_secret_it_never_shows(
    page: Page, console: Console, screens: Screens
):
    page.goto(console.url + "/connectors")
    page.get_by_role("button", name="New connector").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Name", exact=True).fill("plant")
    dialog.get_by_label("Type").select_option("mqtt")
    dialog.get_by_label("Host").fill("127.0.0.1")
    dialog.get_by_label("Port").fill("1883")
    dialog.get_by_label("Username").fill("ada")
    dialog.get_by_label("Password").fill(SECRET)
    screens.shot(page, "connector-form")
    _save(page)
    row = page.get_by_role("row", name="plant")
    expect(row).to_contain_text("password ********")
    row.get_by_role("button", name="Edit").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_label("Password")).to_have_value("")  # the secret never came back
    dialog.get_by_label("Description").fill("the plant's broker")
    _save(page)
    expect(row).to_contain_text("the plant's broker")
    assert SECRET not in page.content()
    with console.api() as api:
        [update, create] = api.get("/api/v1/audit", params={"resource": "connector:plant"}).json()[
            "items"
        ][:2]
    assert (update["action"], create["action"]) == ("connector.update", "connector.create")
    assert update["after"]["settings"]["password"] == "*****"  # kept: not "***** (changed)"
    assert update["after"]["settings"]["username"] == "ada"

    # the audit log page, filtered to this connector, shows what the edit changed
    page.goto(console.url + "/audit")
    page.get_by_label("Resource").fill("connector:plant")
    page.get_by_role("button", name="Apply").click()
    rows = page.locator("table.audit > tbody > tr")
    expect(rows).to_have_count(2)
    rows.first.get_by_role("button", name="Changes").click()
    changes = page.locator("table.changes")
    expect(changes).to_contain_text("description")
    expect(changes).to_contain_text("the plant's broker")
    expect(changes).not_to_contain_text("settings.password")
    screens.shot(page, "audit")


def test_route_loop_is_refused_with_the_cycle_check_message(page: Page, console: Console):
    with console.api() as api:
        mqtt = {"type": "mqtt", "settings": {"host": "127.0.0.1", "port": 1883}}
        assert api.put("/api/v1/connectors/loop-broker", json=mqtt).status_code == 200
        route = {
            "connector": "loop-broker",
            "topics": ["loop/a/#"],
            "publish": {"topic": "loop/b/x"},
        }
        assert api.put("/api/v1/subscriptions/loop-a", json=route).status_code == 200
    page.goto(console.url + "/subscriptions")
    page.get_by_role("button", name="New subscription").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Name", exact=True).fill("loop-b")
    dialog.get_by_label("Connector", exact=True).select_option("loop-broker")
    dialog.get_by_label("Topics").fill("loop/b/#")
    dialog.get_by_label("What it does").select_option("route")
    dialog.get_by_label("Output topic").fill("loop/a/back")
    dialog.get_by_role("button", name="Save").click()
    error = dialog.get_by_role("alert")
    expect(error).to_contain_text("would loop forever: loop-a → loop-b → loop-a")
    dialog.get_by_role("button", name="Cancel").click()
    with console.api() as api:
        assert api.get("/api/v1/subscriptions/loop-b").status_code == 404
        assert api.delete("/api/v1/subscriptions/loop-a").status_code == 200


def test_cron_and_endpoint_forms(page: Page, console: Console, screens: Screens):
    page.goto(console.url + "/cron")
    page.get_by_role("button", name="New cron job").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Id", exact=True).fill("weekly-report")
    dialog.get_by_label("Function", exact=True).fill("hello.greet")
    dialog.get_by_label("Schedule").fill("30 6 * * 1")
    dialog.get_by_label("Time zone").fill("Europe/Paris")
    dialog.get_by_role("button", name="Add argument").click()
    dialog.get_by_label("Arguments: name 1").fill("name")
    dialog.get_by_label("Arguments: value 1").fill("team")
    dialog.get_by_label("Missed runs").select_option("run_once")
    _save(page)
    expect(page.get_by_role("row", name="weekly-report")).to_contain_text("30 6 * * 1")
    with console.api() as api:
        job = api.get("/api/v1/cron-jobs/weekly-report").json()
    job = job.get("job", job)
    assert (job["kwargs"], job["timezone"], job["misfire"]) == (
        {"name": "team"},
        "Europe/Paris",
        "run_once",
    )

    page.goto(console.url + "/endpoints")
    page.get_by_role("button", name="New endpoint").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Name", exact=True).fill("hi")
    dialog.get_by_label("Function", exact=True).fill("hello.greet")
    dialog.get_by_label("Kind").select_option("token")
    dialog.get_by_label("Token").fill(TOKEN)
    dialog.get_by_label("per second").fill("5")
    dialog.get_by_label("Every argument comes from the caller").uncheck()
    dialog.get_by_role("button", name="Add argument").click()
    dialog.get_by_label("Fixed kwargs: name 1").fill("name")
    dialog.get_by_label("caller gives it").check()
    _save(page)
    card = page.locator("section.endpoint", has_text="/e/hi")
    expect(card).to_contain_text("token in header X-Token")
    expect(card).to_contain_text("5/second")
    curl = card.locator(".curl")
    expect(curl).to_contain_text("X-Token: <token>")
    expect(curl).to_contain_text('{"name": "<name>"}')
    expect(curl).not_to_contain_text(TOKEN)
    card.get_by_role("button", name="Edit").click()
    page.get_by_role("dialog").get_by_label("per minute").fill("100")
    screens.shot(page, "endpoint-form")
    _save(page)
    expect(card).to_contain_text("100/minute")
    with httpx.Client(base_url=console.url, timeout=30) as client:  # the token was kept
        answer = client.post("/e/hi", json={"name": "ada"}, headers={"X-Token": TOKEN})
        assert answer.status_code == 200, answer.text
        assert answer.json()["message"] == "hello, ada!"
        assert client.post("/e/hi", json={"name": "ada"}).status_code == 401
