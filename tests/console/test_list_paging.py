"""The named listings (connectors, subscriptions, endpoints, cron jobs, API keys, users, env
variables) come a page at a time with a name filter, in the task list's shape, and the console
pages through them."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from .conftest import Console, Screens

LISTINGS = ("connectors", "subscriptions", "endpoints", "cron-jobs", "keys", "users", "envs")
KEYS = [f"paged-key-{i:03d}" for i in range(105)]


def _walk(api, path: str, limit: int, **params: str) -> list[dict]:
    """Every item of a listing, a page at a time; checks each page's shape on the way."""
    items, cursor, first = [], None, True
    while True:
        query = {"limit": str(limit), **params, **({"cursor": cursor} if cursor else {})}
        answer = api.get(path, params=query)
        assert answer.status_code == 200, answer.text
        page = answer.json()
        assert set(page) >= {"items", "total", "offset", "limit", "next_cursor"}
        assert len(page["items"]) <= limit
        assert (page["total"] is not None) == first  # counted on the first page only
        first = False
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items


def test_listings_page_and_filter_through_the_api(console: Console):
    with console.api() as api:
        made = [api.post("/api/v1/keys", json={"name": n, "role": "viewer"}) for n in KEYS[:7]]
        assert all(r.status_code == 201 for r in made)
        ids = [r.json()["id"] for r in made]
        for i in range(3):
            job = {"id": f"paged-job-{i}", "function": "hello.greet", "expr": "0 3 * * *"}
            assert api.post("/api/v1/cron-jobs", json=job).status_code == 201
        try:
            every = _walk(api, "/api/v1/keys", 100)
            walked = _walk(api, "/api/v1/keys", 2)
            assert [k["id"] for k in walked] == [k["id"] for k in every]  # same rows, in order
            assert [k["name"] for k in every] == sorted(k["name"] for k in every)
            named = _walk(api, "/api/v1/keys", 3, name="PAGED-KEY-00")  # any case
            assert [k["name"] for k in named] == KEYS[:7]
            first = api.get("/api/v1/keys", params={"name": "paged-key", "limit": 3}).json()
            assert first["total"] == 7 and len(first["items"]) == 3
            jobs = _walk(api, "/api/v1/cron-jobs", 2, name="paged-job")
            assert [j["id"] for j in jobs] == ["paged-job-0", "paged-job-1", "paged-job-2"]
            assert "paused_all" in api.get("/api/v1/cron-jobs").json()
            for listing in LISTINGS:
                path = f"/api/v1/{listing}"
                assert api.get(path, params={"limit": 1}).json()["limit"] == 1
                bad = api.get(path, params={"cursor": "not-a-cursor"})
                assert bad.status_code == 422 and "cursor" in bad.text, bad.text
                assert api.get(path, params={"limit": 501}).status_code == 422
        finally:
            for key_id in ids:
                api.delete(f"/api/v1/keys/{key_id}")
            for i in range(3):
                api.delete(f"/api/v1/cron-jobs/paged-job-{i}")


def test_the_keys_page_pages_and_filters(page: Page, console: Console, screens: Screens):
    with console.api() as api:
        made = [api.post("/api/v1/keys", json={"name": n, "role": "viewer"}) for n in KEYS]
        assert all(r.status_code == 201 for r in made)
    try:
        page.goto(console.url + "/keys")
        page.get_by_label("Filter").fill("paged-key")
        expect(page.get_by_text("105 matching")).to_be_visible()
        rows = page.locator("table tbody tr")
        expect(rows).to_have_count(100)
        expect(rows.first).to_contain_text("paged-key-000")
        screens.shot(page, "keys-paged")
        page.get_by_role("button", name="Next").click()
        expect(rows).to_have_count(5)
        expect(rows.last).to_contain_text("paged-key-104")
        expect(page.get_by_text("page 2")).to_be_visible()
        page.get_by_role("button", name="Previous").click()
        expect(rows).to_have_count(100)
        page.get_by_label("Filter").fill("paged-key-10")
        expect(rows).to_have_count(5)  # 100..104
        expect(page.get_by_text("page 1 · 5 matching")).to_be_visible()
    finally:
        with console.api() as api:
            for r in made:
                api.delete(f"/api/v1/keys/{r.json()['id']}")
