"""`/metrics` is open by default; with `metrics_auth` it needs a key or session of any role."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from fnhub.accounts.roles import Role
from fnhub.server.auth import create_key
from fnhub.store.db import Database

from .conftest import Stack, close_stack, make_stack


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = make_stack(tmp_path_factory.mktemp("metrics-auth"), workers=False, metrics_auth="true")
    yield s
    close_stack(s)


def _viewer_key(tmp: Path) -> str:
    db = Database(f"sqlite:///{tmp / 'fnhub.db'}")
    try:
        return create_key(db, "scraper", role=Role.VIEWER)[1]
    finally:
        db.dispose()


def test_metrics_need_a_credential_when_metrics_auth_is_on(stack: Stack) -> None:
    anonymous = httpx.get(f"{stack.url}/metrics")
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "unauthorized"
    wrong = httpx.get(f"{stack.url}/metrics", headers={"Authorization": "Bearer fnh_x_nope"})
    assert wrong.status_code == 401
    viewer = _viewer_key(stack.dir)
    scraped = httpx.get(f"{stack.url}/metrics", headers={"Authorization": f"Bearer {viewer}"})
    assert scraped.status_code == 200
    assert "fnhub_" in scraped.text
    assert httpx.get(f"{stack.url}/healthz").status_code == 200  # liveness stays open
