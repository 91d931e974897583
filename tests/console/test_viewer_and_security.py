"""Roles and session safety through the browser: a viewer sees everything and changes nothing;
a request without the CSRF token is refused; a session id planted before sign-in is not kept;
ten wrong passwords lock the name out for a while."""

from __future__ import annotations

import random

from playwright.sync_api import Browser, expect

from .conftest import Console, Screens, new_page, sign_in

PASSWORD = "viewer password 1"


def _address() -> str:
    """A client address of its own (the server trusts X-Forwarded-For from loopback), so this
    test's failed sign-ins count against nobody else's."""
    return f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(1, 255)}"


def test_a_viewer_cannot_change_anything(browser: Browser, console: Console, screens: Screens):
    with console.api() as api:
        r = api.post(
            "/api/v1/users", json={"username": "vera", "password": PASSWORD, "role": "viewer"}
        )
        assert r.status_code == 201, r.text
    page = new_page(browser)
    sign_in(page, console, "vera", PASSWORD)
    page.goto(console.url + "/scripts/hello")
    expect(page.get_by_text("read-only (viewer)")).to_be_visible()
    expect(page.get_by_role("button", name="Publish…")).to_have_count(0)
    expect(page.get_by_role("button", name="New script")).to_have_count(0)
    page.goto(console.url + "/scripts/hello/run/greet")
    expect(page.get_by_role("button", name="Run", exact=True)).to_be_disabled()
    for path, button in (
        ("/cron", "New cron job"),
        ("/connectors", "New connector"),
        ("/envs", "New variable"),
    ):
        page.goto(console.url + path)
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        expect(page.get_by_role("button", name=button)).to_have_count(0)
    page.goto(console.url + "/users")
    expect(page.get_by_text("Only an admin manages users.")).to_be_visible()
    screens.shot(page, "viewer-users")
    # the server refuses what the page does not offer
    csrf = page.request.get(console.url + "/api/v1/session").json()["csrf_token"]
    refused = page.request.put(
        console.url + "/api/v1/scripts/hello",
        data={"code": "import fnhub\n"},
        headers={"X-CSRF-Token": csrf},
    )
    assert refused.status == 403 and refused.json()["error"]["code"] == "forbidden"
    page.context.close()


def test_csrf_fixation_and_wrong_passwords_are_refused(
    browser: Browser, console: Console, screens: Screens
):
    address = _address()
    page = new_page(browser, extra_http_headers={"X-Forwarded-For": address})
    planted = "attacker-chosen-session-id-0000000000000000"
    page.context.add_cookies([{"name": "fnhub_session", "value": planted, "url": console.url}])
    sign_in(page, console, "admin", console.admin_password)
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    assert cookies["fnhub_session"] != planted
    without_token = page.request.put(
        console.url + "/api/v1/scripts/hello", data={"code": "import fnhub\n"}
    )
    assert without_token.status == 403 and without_token.json()["error"]["code"] == "csrf"
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()

    with console.api() as api:
        r = api.post(
            "/api/v1/users", json={"username": "target", "password": PASSWORD, "role": "viewer"}
        )
        assert r.status_code == 201, r.text
    for _ in range(10):
        page.get_by_label("Username").fill("target")
        page.get_by_label("Password").fill("not the password")
        page.get_by_role("button", name="Sign in").click()
        expect(page.locator(".sign-in-card .error-box")).to_be_visible()
    page.get_by_label("Username").fill("target")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator(".sign-in-card .error-box")).to_contain_text("later")
    screens.shot(page, "sign-in")
    expect(page.get_by_role("button", name="Sign out")).to_have_count(0)
    page.context.close()
