"""The console driven as a person would: a real `fnhub serve` (machine Redis under a unique key
prefix, SQLite in a temp folder) and Debian's Chromium through Playwright.

Screenshots land in a temp folder (printed at the end of the run) and, when
FNHUB_CONSOLE_SCREENSHOTS names a folder, there too (docs/console/ is made that way).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright
from tests.conftest import REDIS_URL, free_port

CHROMIUM = "/usr/bin/chromium"
VIEWPORT = {"width": 1280, "height": 800}
ADMIN = "admin"


@dataclass
class Console:
    url: str
    project: Path
    env: dict[str, str]
    admin_password: str
    prefix: str

    @contextlib.contextmanager
    def api(self) -> Iterator[httpx.Client]:
        """An API client signed in as the admin (session cookie and CSRF header)."""
        with httpx.Client(base_url=self.url, timeout=30) as client:
            r = client.post(
                "/api/v1/session", json={"username": ADMIN, "password": self.admin_password}
            )
            assert r.status_code == 200, r.text
            client.headers["X-CSRF-Token"] = r.json()["csrf_token"]
            yield client

    def fnhub(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "fnhub.cli", *args],
            cwd=self.project,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="session")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    root = tmp_path_factory.mktemp("console")
    prefix = f"c{uuid.uuid4().hex[:10]}"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FNHUB_")}
    env.update(
        FNHUB_PORT=str(port),
        FNHUB_REDIS_URL=REDIS_URL,
        FNHUB_KEY_PREFIX=prefix,
        FNHUB_SHUTDOWN_GRACE_SECONDS="0.5",
        FNHUB_ACCESS_LOG="false",
    )
    init = subprocess.run(
        [sys.executable, "-m", "fnhub.cli", "init", "demo"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert init.returncode == 0, init.stderr
    project = root / "demo"
    password = (project / ".fnhub" / "admin_password").read_text().strip()
    log = open(project / "serve.log", "ab")  # noqa: SIM115 - closed with the process
    serve = subprocess.Popen(
        [sys.executable, "-m", "fnhub.cli", "serve", "--processes", "2"],
        cwd=project,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        assert serve.poll() is None, (project / "serve.log").read_text()[-3000:]
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "fnhub serve not ready in 90 s"
        time.sleep(0.2)
    try:
        yield Console(url, project, env, password, prefix)
    finally:
        _stop(serve)
        log.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One Chromium per test module, not per session: Playwright's sync API keeps an asyncio
    loop running in the main thread while it is open, which breaks every asyncio test that
    pytest runs after it."""
    assert Path(CHROMIUM).exists(), "Chromium is missing: apt-get install chromium (.ci/run does)"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


class Screens:
    """Saves a 1280x800 screenshot per page visited, named in visiting order."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.extra = os.environ.get("FNHUB_CONSOLE_SCREENSHOTS")
        self.taken: list[Path] = []

    def shot(self, page: Page, name: str) -> Path:
        page.wait_for_timeout(300)  # let charts and fonts settle
        path = self.folder / f"{name}.png"
        page.screenshot(path=str(path))
        self.taken.append(path)
        if self.extra:
            Path(self.extra).mkdir(parents=True, exist_ok=True)
            shutil.copy(path, Path(self.extra) / path.name)
        return path


@pytest.fixture(scope="session")
def screens(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Screens]:
    screens = Screens(tmp_path_factory.mktemp("screens"))
    yield screens
    print(f"\nconsole screenshots: {screens.folder}")


def sign_in(page: Page, console: Console, username: str, password: str) -> None:
    page.goto(console.url + "/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def _unexpected(kind: str, text: str) -> bool:
    """Console errors other than the browser's note on a refused request (a 422 the page shows)."""
    return kind == "error" and not text.startswith("Failed to load resource")


def new_page(browser: Browser, **context: object) -> Page:
    page = browser.new_context(viewport=VIEWPORT, **context).new_page()  # type: ignore[arg-type]
    page.on("dialog", lambda dialog: dialog.accept())
    return page


@pytest.fixture()
def page(browser: Browser, console: Console) -> Iterator[Page]:
    """A fresh browser context signed in as the admin, with any page error failing the test."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda m: errors.append(m.text) if _unexpected(m.type, m.text) else None)
    page.on("dialog", lambda dialog: dialog.accept())  # confirm() before rollback, delete, ...
    sign_in(page, console, ADMIN, console.admin_password)
    yield page
    context.close()
    assert not errors, errors


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every page is photographed last, once the other tests (which share one server) have
    filled the pages with connectors, subscriptions, tasks, dead letters..."""
    items.sort(key=lambda item: item.path.name == "test_every_page.py")  # stable sort
