"""What a worker loads on its way to its first task: after a process death the restarted workers
are the capacity that is missing, so a module pulled in by mistake (SQLAlchemy, the HTTP server,
the connectors, the command line in every child) delays every recovery. Checked by what is in
`sys.modules`, never by timing."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.conftest import REDIS_URL, call_ok, wait_for
from tests.project_cli import stop

import fnhub
from fnhub.calling.queue_client import QueueClient
from fnhub.config import Settings

PACKAGE_PARENT = Path(fnhub.__file__).parent.parent

#: what neither a worker supervisor (until its children run) nor a worker child needs
NOT_FOR_A_WORKER = (
    "sqlalchemy",
    "fastapi",
    "starlette",
    "uvicorn",
    "fnhub.server.app",
    "fnhub.audit",
    "fnhub.secret_box",
    "fnhub.connectors",
    "fnhub.scripts.store",
    "fnhub.store",
)
#: a child's own: not the command line either (typer, rich), nor the console's
NOT_FOR_A_CHILD = (*NOT_FOR_A_WORKER, "typer", "rich", "fnhub.cli", "fnhub.console")

PROBE = textwrap.dedent(
    """
    import sys

    import fnhub


    @fnhub.api()
    def modules():
        return sorted(sys.modules)
    """
)


def _loaded(code: str, prefixes: tuple[str, ...]) -> list[str]:
    """The modules under `prefixes` that `code` leaves imported in a new interpreter."""
    done = subprocess.run(
        [sys.executable, "-c", f"import sys\n{code}\nprint('\\n'.join(sys.modules))"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": str(PACKAGE_PARENT), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    return sorted(m for m in done.stdout.split() if _under(m, prefixes))


def _under(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def test_the_worker_command_imports_no_database_server_nor_connectors() -> None:
    """`fnhub worker` up to its children's start: the command line and the supervisor. The
    recorder and the direct subscriptions' reader open the database after the children
    started."""
    assert _loaded("import fnhub.cli, fnhub.worker.supervisor", NOT_FOR_A_WORKER) == []


def test_a_worker_child_module_imports_no_database_server_nor_command_line() -> None:
    assert _loaded("import fnhub.worker.child", NOT_FOR_A_CHILD) == []


def test_a_worker_child_of_fnhub_worker_runs_without_the_command_line(
    settings: Settings, services, publish, client: QueueClient, tmp_path: Path
) -> None:
    """A child spawned by `python -m fnhub.cli worker` (or the `fnhub` console script) does not
    run the command line again as its `__mp_main__` (`fnhub.spawning`), and what its first
    task loads stays out of the database and the server."""
    publish({"probe": PROBE})
    env = {k: v for k, v in os.environ.items() if not k.startswith("FNHUB_")}
    env.update(
        FNHUB_REDIS_URL=REDIS_URL,
        FNHUB_KEY_PREFIX=settings.key_prefix,
        FNHUB_DB_URL=settings.db_url,
        FNHUB_DATA_DIR=str(settings.data_dir),
        PYTHONPATH=os.pathsep.join([str(PACKAGE_PARENT), env.get("PYTHONPATH", "")]),
    )
    worker = subprocess.Popen(
        [sys.executable, "-m", "fnhub.cli", "worker", "-p", str(tmp_path), "--processes", "1"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / "worker.log", "ab"),  # noqa: SIM115 - the worker holds it
    )
    try:
        wait_for(client.workers, timeout=60)
        modules = call_ok(client, "probe.modules", timeout=60).result
    finally:
        stop(worker)
    assert "fnhub.worker.child" in modules  # (the child answered)
    assert [m for m in modules if _under(m, NOT_FOR_A_CHILD)] == []


def test_a_supervisor_opens_the_database_after_its_children_and_no_connector(
    settings: Settings, services
) -> None:
    """Spawning the children imports no SQLAlchemy; the recorder and the direct subscriptions'
    reader start once the children read (the supervising loop's `_set_up_after_children`), and
    the reader, finding no direct subscription, imports no connector module nor the secrets'
    cipher."""
    code = textwrap.dedent(
        f"""
        import sys, time
        from fnhub.config import Settings
        from fnhub.worker.supervisor import Supervisor

        sup = Supervisor(Settings.model_validate_json({settings.model_dump_json()!r}), processes=2)
        sup.start()
        print("sqlalchemy" in sys.modules)
        deadline = time.monotonic() + 30
        while sup.direct._wanted is None and time.monotonic() < deadline:
            sup._check_children()
            sup._set_up_after_children()
            time.sleep(0.05)
        print(all(child.slot.reading for child in sup.children), sup.direct._wanted)
        print(sorted(m for m in sys.modules if m.startswith(("fnhub.connectors", "fnhub.secret_box",
                                                             "cryptography.fernet"))))
        sup.shutdown()
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=90,
        env={**os.environ, "PYTHONPATH": str(PACKAGE_PARENT)},
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()[-3:]
    assert lines == ["False", "True {}", "[]"], done.stdout + done.stderr
