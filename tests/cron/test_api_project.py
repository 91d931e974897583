"""The `/cron-jobs` API (mounted on a bare FastAPI app with fnhub's error handlers) and the
`cron_jobs:` fnhub.yaml section."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from fnhub.bootstrap import Services
from fnhub.calling.caller import Caller
from fnhub.cron.area import router
from fnhub.cron.jobs import JobStore
from fnhub.features import FEATURES
from fnhub.project import apply_project
from fnhub.redis_client import async_redis
from fnhub.server import errors
from fnhub.server.context import ServerContext

from .conftest import SCRIPT, queued


@pytest.fixture
async def api(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    errors.install(app)
    app.include_router(router, prefix="/api/v1")
    client = async_redis(services.settings)
    caller = Caller(services.settings, client, services.keys, "test-server")
    app.state.ctx = ServerContext(
        services.settings, client, services.db, services.keys, "test-server", caller
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        yield http
    await client.aclose()


async def test_crud_run_pause_and_listing(api: httpx.AsyncClient, services: Services) -> None:
    body = {
        "id": "api-job",
        "function": "jobs.tick",
        "expr": "*/10 * * * * *",
        "timezone": "Europe/Berlin",
        "kwargs": {"n": 3},
    }
    created = await api.post("/api/v1/cron-jobs", json=body)
    assert created.status_code == 201, created.text
    assert (await api.post("/api/v1/cron-jobs", json=body)).status_code == 409
    listing = (await api.get("/api/v1/cron-jobs")).json()
    status = listing["items"][0]["status"]
    assert status["expr"] == "*/10 * * * * *" and status["timezone"] == "Europe/Berlin"
    assert len(status["next"]) == 3 and all(t % 10 == 0 for t in status["next"])
    assert status["next"] == sorted(status["next"])
    assert (await api.post("/api/v1/cron-jobs/api-job/pause", json={"seconds": 30})).is_success
    job = (await api.get("/api/v1/cron-jobs/api-job")).json()
    assert job["status"]["paused"]["until"] is not None
    assert (await api.post("/api/v1/cron-jobs/api-job/resume")).is_success
    assert (await api.get("/api/v1/cron-jobs/api-job")).json()["status"]["paused"] is None
    assert (await api.post("/api/v1/cron/pause")).json()["paused_all"] is True
    assert (await api.get("/api/v1/cron-jobs")).json()["paused_all"] == {"until": None}
    await api.post("/api/v1/cron/resume")
    run = await api.post("/api/v1/cron-jobs/api-job/run")
    assert run.status_code == 202
    assert [t.id for t in queued(services)] == [run.json()["task_id"]]
    assert (await api.delete("/api/v1/cron-jobs/api-job")).status_code == 204
    assert (await api.get("/api/v1/cron-jobs/api-job")).status_code == 404
    assert int(services.redis.get(services.keys.cron_revision)) == 2


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"expr": "61 * * * *"}, "out of range"),
        ({"expr": "* * *"}, "expected 5"),
        ({"timezone": "Nowhere/City"}, "unknown timezone 'Nowhere/City'"),
        ({"function": "jobs.nope"}, "unknown function 'jobs.nope'"),
        ({"kwargs": {"bogus": 1}}, "unexpected keyword argument"),
        ({"expr": None}, "no expression"),
    ],
)
async def test_bad_jobs_are_refused_with_the_reason(
    api: httpx.AsyncClient, change: dict[str, object], message: str
) -> None:
    body = {"id": "bad", "function": "jobs.tick", "expr": "* * * * *", **change}
    response = await api.post("/api/v1/cron-jobs", json=body)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid"
    assert message in response.json()["error"]["message"]


def test_project_section_declares_provisioned_jobs(services: Services) -> None:
    settings = services.settings
    (settings.project_dir / "scripts").mkdir()
    (settings.project_dir / "scripts" / "jobs.py").write_text(SCRIPT)
    yaml = settings.project_dir / "fnhub.yaml"
    yaml.write_text(
        "cron_jobs:\n"
        "  - {id: a, function: jobs.tick, expr: '*/5 * * * *', misfire: run_once}\n"
        "  - {id: b, function: jobs.fixed}\n"
    )
    apply_project(settings, services.scripts, FEATURES)
    rows = {r.id: r for r in JobStore(services.db).all()}
    assert set(rows) == {"a", "b"} and all(r.provisioned for r in rows.values())
    assert rows["a"].misfire == "run_once"
    yaml.write_text("cron_jobs:\n  - {id: a, function: jobs.tick, expr: '*/5 * * * *'}\n")
    apply_project(settings, services.scripts, FEATURES)
    assert [r.id for r in JobStore(services.db).all()] == ["a"]
    yaml.write_text("cron_jobs:\n  - {id: c, function: jobs.tick, expr: '0 25 * * *'}\n")
    with pytest.raises(ValueError, match="cron job 'c': invalid cron expression"):
        apply_project(settings, services.scripts, FEATURES)
    assert [r.id for r in JobStore(services.db).all()] == ["a"]
