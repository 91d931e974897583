"""What a beat loads on its way to its first tick: when a server and both beats die together,
the restarted beats compete with the surviving server for the cores, and a beat's start is
nearly all imports. A beat reads the jobs with SQLAlchemy Core (`fnhub.cron.spec.read_jobs`):
not the ORM, the models, the audit log (and its cipher), the script store, Alembic (the schema
is at its heads) nor the server. Checked by what is in `sys.modules`, never by timing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sqlalchemy import Table
from tests.conftest import REDIS_URL, fresh_database, wait_for
from tests.project_cli import stop
from tests.test_worker_start import PACKAGE_PARENT, _loaded, _under

from fnhub.bootstrap import Services
from fnhub.config import Settings
from fnhub.cron.jobs import CronJobSpec, JobStore, spec_of
from fnhub.cron.models import CronJob
from fnhub.cron.spec import JOBS, read_jobs
from fnhub.store.db import Database

#: what a beat does not need before its first tick
NOT_FOR_A_BEAT = (
    "sqlalchemy.orm",
    "sqlalchemy.dialects.mysql",
    "sqlalchemy.dialects.postgresql",
    "alembic",
    "fastapi",
    "starlette",
    "uvicorn",
    "fnhub.server.app",
    "fnhub.audit",
    "fnhub.secret_box",
    "cryptography.fernet",
    "fnhub.connectors",
    "fnhub.scripts.store",
    "fnhub.store.models",
    "fnhub.cron.models",
    "fnhub.cron.jobs",
    "fnhub.worker",
)

#: what `fnhub beat` imports up to its loop (`fnhub.cron.cli.beat`)
BEAT_COMMAND = (
    "import fnhub.cli, fnhub.cron.cli, fnhub.cron.beat, fnhub.bootstrap, fnhub.heap, "
    "fnhub.holders, fnhub.keys, fnhub.log_setup, fnhub.redis_client, fnhub.store.db, "
    "fnhub.supervised, fnhub.tracing"
)

#: `fnhub beat` as the console script runs it, writing `sys.modules` when it sends its first tick
FIRST_TICK = textwrap.dedent(
    """
    import json, os, sys

    from fnhub.cron.beat import Beat

    send = Beat._send

    async def first_send(self, segments):
        Beat._send = send
        with open(os.environ["MODULES_AT_FIRST_TICK"], "w") as f:
            json.dump(sorted(sys.modules), f)
        return await send(self, segments)

    Beat._send = first_send
    from fnhub.cli import main

    main()
    """
)

PROBE = "import fnhub\n\n\n@fnhub.api()\ndef tick():\n    return 1\n"


def test_the_beat_command_imports_no_orm_audit_script_store_nor_server() -> None:
    assert _loaded(BEAT_COMMAND, NOT_FOR_A_BEAT) == []


def test_a_beat_reaches_its_first_tick_without_the_orm_nor_the_server(
    settings: Settings, services: Services, publish, tmp_path: Path
) -> None:
    """A real `fnhub beat` on a migrated database, with a job due every second: at its first
    tick's send it has loaded nothing of NOT_FOR_A_BEAT (SQLite's dialect only)."""
    publish({"probe": PROBE})
    spec = {"id": "every", "function": "probe.tick", "expr": "* * * * * *", "overlap": "allow"}
    JobStore(services.db).replace(CronJobSpec.model_validate(spec))
    out = tmp_path / "modules.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FNHUB_")}
    env.update(
        FNHUB_REDIS_URL=REDIS_URL,
        FNHUB_KEY_PREFIX=settings.key_prefix,
        FNHUB_DB_URL=settings.db_url,
        FNHUB_DATA_DIR=str(settings.data_dir),
        MODULES_AT_FIRST_TICK=str(out),
        PYTHONPATH=os.pathsep.join([str(PACKAGE_PARENT), env.get("PYTHONPATH", "")]),
    )
    beat = subprocess.Popen(
        [sys.executable, "-c", FIRST_TICK, "beat", "-p", str(tmp_path)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / "beat.log", "ab"),  # noqa: SIM115 - the beat holds it
    )
    try:
        wait_for(out.exists, timeout=60)
        wait_for(lambda: services.redis.hget(services.keys.cron_fired, "every"), timeout=30)
    finally:
        stop(beat)
    loaded = json.loads(wait_for(lambda: out.read_text(), timeout=10))
    assert "fnhub.cron.beat" in loaded and "sqlalchemy.dialects.sqlite" in loaded
    assert [m for m in loaded if _under(m, NOT_FOR_A_BEAT)] == []


def test_a_beats_read_of_the_jobs_has_the_models_columns() -> None:
    """`cron.spec.JOBS` copies the columns a beat reads from the model, by name and type."""
    model = CronJob.__table__
    assert isinstance(model, Table)
    for name, copy in JOBS.c.items():
        assert type(copy.type) is type(model.c[name].type), name
    assert set(model.c.keys()) - set(JOBS.c.keys()) == {"provisioned", "updated_at"}


@pytest.mark.parametrize("kind", ["sqlite", "postgresql", "mysql"])
def test_a_beats_read_of_the_jobs_gives_the_stores_specs(kind: str, tmp_path: Path) -> None:
    """The Core read and the ORM's agree on every field a beat uses (JSON, bools, floats,
    nulls), jobs in the same order, on each database."""
    urls = fresh_database(kind, tmp_path)
    db = Database(next(urls))
    try:
        db.migrate()
        _compare_reads(db)
    finally:
        db.dispose()
        urls.close()


def _compare_reads(db: Database) -> None:
    store = JobStore(db)
    store.replace(
        CronJobSpec(
            id="b-full",
            function="probe.tick",
            expr="*/5 * * * *",
            timezone="Europe/Paris",
            kwargs={"n": 1, "nested": {"x": [1, 2.5, None]}},
            enabled=False,
            expires_at=2e9,
            queue="q1",
            record_limit=7,
            misfire="run_once",
            overlap="allow",
            title="all set",
        )
    )
    store.replace(CronJobSpec(id="a-bare", function="probe.tick", expr="* * * * *"))
    rows, stored = read_jobs(db), store.all()
    assert [r.id for r in rows] == [r.id for r in stored] == ["a-bare", "b-full"]
    for row, orm in zip(rows, stored, strict=True):
        assert spec_of(row) == spec_of(orm)
        assert (row.enabled, row.created_at) == (orm.enabled, orm.created_at)
        assert type(row.enabled) is bool and type(row.created_at) is float
