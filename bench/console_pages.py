"""Cold-load weight of every console page: bytes over the wire (as sent: brotli) for the page
and the code it loads, each page in a fresh browser (empty cache) that is already signed in.

    python bench/console_pages.py http://127.0.0.1:8090 PASSWORD [--user admin]

Counts index.html and /assets/* (what a page needs to draw); API answers are data, listed
apart. Needs a running `fnhub serve` and Chromium (/usr/bin/chromium).
"""

from __future__ import annotations

import argparse

import httpx
from playwright.sync_api import sync_playwright

PAGES = [
    ("sign-in", "/", False),
    ("overview", "/", True),
    ("scripts (editor)", "/scripts/hello", True),
    ("scripts: run form", "/scripts/hello/run/greet", True),
    ("tasks", "/tasks", True),
    ("dead letters", "/dead-letters", True),
    ("env variables", "/envs", True),
    ("connectors", "/connectors", True),
    ("subscriptions", "/subscriptions", True),
    ("cron jobs", "/cron", True),
    ("endpoints", "/endpoints", True),
    ("websub hub", "/hub/topics", True),
    ("api keys", "/keys", True),
    ("users", "/users", True),
    ("audit log", "/audit", True),
]


def _cookie(url: str, user: str, password: str) -> str:
    r = httpx.post(f"{url}/api/v1/session", json={"username": user, "password": password})
    r.raise_for_status()
    return r.cookies["fnhub_session"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("password")
    parser.add_argument("--user", default="admin")
    args = parser.parse_args()
    url = args.url.rstrip("/")
    print(f"{'page':22} {'files':>5} {'code KB':>8} {'raw KB':>8} {'data KB':>8}")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        for label, path, signed_in in PAGES:
            context = browser.new_context(viewport={"width": 1280, "height": 800})
            if signed_in:
                cookie = _cookie(url, args.user, args.password)
                context.add_cookies([{"name": "fnhub_session", "value": cookie, "url": url}])
            page = context.new_page()
            code: dict[str, int] = {}
            raw: dict[str, int] = {}
            data = [0]

            def finished(request, code=code, raw=raw, data=data) -> None:  # noqa: ANN001
                response = request.response()
                if response is None or "/events" in request.url:
                    return
                size = request.sizes()["responseBodySize"]
                if "/api/" in request.url:
                    data[0] += size
                else:
                    code[request.url] = size
                    raw[request.url] = len(response.body())

            page.on("requestfinished", finished)
            page.goto(url + path)
            page.wait_for_load_state("networkidle")
            page.wait_for_timeout(1500)  # chunks a page fetches once it knows what to draw
            print(
                f"{label:22} {len(code):5} {sum(code.values()) / 1000:8.1f} "
                f"{sum(raw.values()) / 1000:8.1f} {data[0] / 1000:8.1f}"
            )
            context.close()
        browser.close()


if __name__ == "__main__":
    main()
