"""What a worker loads on its way to its first task: after a process death the restarted workers
are the capacity that is missing, so a module pulled in by mistake (SQLAlchemy, the HTTP server,
the connectors, the command line in every child) delays every recovery, and so does each child
importing the runtime again: children fork from one fork server that imported it once
(`fnhub.worker.template`). Checked by what is in `sys.modules` and which process forked which,
never by timing."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
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


def test_the_recorder_and_the_store_import_only_the_sql_dialect_in_use() -> None:
    """Each of SQLAlchemy's dialects costs milliseconds to import and a process uses one
    database: the upserts import theirs when first built (`store.db.upsert_insert`). (MySQL's
    is imported by the models, for its column types.)"""
    dialects = ("sqlalchemy.dialects.postgresql", "sqlalchemy.dialects.sqlite")
    assert _loaded("import fnhub.records, fnhub.envs.kv", dialects) == []
    code = (
        "from fnhub.records import _upsert_statement\n"
        "from fnhub.envs.kv import _upsert\n"
        "_upsert_statement('postgresql'), _upsert('postgresql')"
    )
    packages = {".".join(m.split(".")[:3]) for m in _loaded(code, dialects)}
    assert packages == {"sqlalchemy.dialects.postgresql"}


def test_the_fork_server_imports_the_childs_runtime_and_nothing_else() -> None:
    """What children inherit instead of importing: the child's runtime (Settings and its
    pydantic-settings, redis-py), and still no database, server nor command line."""
    assert _loaded("import fnhub.worker.template", NOT_FOR_A_CHILD) == []
    runtime = ("fnhub.worker.child", "fnhub.config", "pydantic_settings", "redis")
    assert set(runtime) <= set(_loaded("import fnhub.worker.template", runtime))


@pytest.mark.parametrize(
    ("before", "refusal"),
    [
        ("threading.Thread(target=time.sleep, args=(30,), daemon=True).start()", "be single-"),
        ("conn = socket.create_connection(('127.0.0.1', 6379))", "hold no connection"),
        ("loop = asyncio.new_event_loop()", "have no event loop"),
    ],
)
def test_the_fork_server_refuses_to_fork_from_a_process_with_threads_or_connections(
    before: str, refusal: str
) -> None:
    """A module of the preload that started a thread, connected or made an event loop would
    have every child fork a copy of it: the fork server stops at its preload instead (and the
    supervisor, which cannot start a child, with it)."""
    code = f"import asyncio, socket, threading, time\n{before}\nimport fnhub.worker.template"
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": str(PACKAGE_PARENT), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode != 0
    assert f"a worker's fork server must {refusal}" in done.stderr


def _stat(pid: int) -> list[str]:
    """/proc/<pid>/stat after the command name: [state, ppid, pgrp, session, ...]."""
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


def _descendants(pid: int) -> list[int]:
    found, parents = [], [pid]
    while parents:
        parent = parents.pop()
        for task in os.listdir(f"/proc/{parent}/task"):
            try:
                with open(f"/proc/{parent}/task/{task}/children") as f:
                    kids = [int(k) for k in f.read().split()]
            except OSError:
                continue
            found += kids
            parents += kids
    return found


def _worker_children(supervisor: int) -> list[int]:
    """The supervisor's worker children: its descendants leading a session of their own."""
    found = []
    for pid in _descendants(supervisor):
        try:
            if int(_stat(pid)[3]) == pid:
                found.append(pid)
        except OSError:
            continue  # gone meanwhile
    return found


def _inet_sockets(pid: int) -> list[str]:
    """The TCP and UDP sockets `pid` holds (the inode of each)."""
    inodes = set()
    for table in ("tcp", "tcp6", "udp", "udp6"):
        with open(f"/proc/{pid}/net/{table}") as f:
            inodes |= {line.split()[9] for line in f.readlines()[1:]}
    held = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        target = os.readlink(f"/proc/{pid}/fd/{fd}")
        if target.startswith("socket:[") and target[8:-1] in inodes:
            held.append(target)
    return held


def test_worker_children_fork_from_one_clean_fork_server_and_run_without_the_command_line(
    settings: Settings, services, publish, client: QueueClient, tmp_path: Path
) -> None:
    """`python -m fnhub.cli worker --processes 2` (as the `fnhub` console script): both
    children, and the replacement of one SIGKILLed, are forked by one fork server, a child of
    the supervisor with one thread and no connection, which a SIGTERM does not end (the
    supervisor decides when children stop). A child does not run the command line again as
    its `__mp_main__` (`fnhub.spawning`), and what its first task loads stays out of the
    database and the server."""
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
        [sys.executable, "-m", "fnhub.cli", "worker", "-p", str(tmp_path), "--processes", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / "worker.log", "ab"),  # noqa: SIM115 - the worker holds it
    )
    try:
        wait_for(client.workers, timeout=60)
        modules = call_ok(client, "probe.modules", timeout=60).result
        children = wait_for(lambda: (c := _worker_children(worker.pid)) and len(c) == 2 and c)
        [server] = {int(_stat(child)[1]) for child in children}
        assert server != worker.pid and int(_stat(server)[1]) == worker.pid
        assert os.listdir(f"/proc/{server}/task") == [str(server)]
        assert _inet_sockets(server) == []
        os.kill(server, signal.SIGTERM)
        os.kill(children[0], signal.SIGKILL)
        [replacement] = wait_for(
            lambda: [c for c in _worker_children(worker.pid) if c not in children], timeout=60
        )
        assert int(_stat(replacement)[1]) == server
        again = call_ok(client, "probe.modules", timeout=60).result
    finally:
        stop(worker)
    for loaded in (modules, again):
        assert "fnhub.worker.child" in loaded  # (the child answered)
        assert [m for m in loaded if _under(m, NOT_FOR_A_CHILD)] == []


def _run_supervisor_code(code: str, *path: str) -> subprocess.CompletedProcess[str]:
    """`code` run by a new interpreter with fnhub (and `path`) importable; it must succeed."""
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=90,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(PACKAGE_PARENT), *path])},
    )
    assert done.returncode == 0, done.stderr
    return done


def test_a_supervisor_beats_while_a_new_fork_server_imports(
    settings: Settings, services, tmp_path: Path
) -> None:
    """The first fork waits for the fork server's imports (seconds on a loaded machine, past
    the heartbeat key's life): the supervisor beats from a thread meanwhile. Here the preload
    takes 3 s and beats are due every 0.5 s; counted, not timed."""
    (tmp_path / "slow_template.py").write_text("import time\ntime.sleep(3)\n")
    quick = settings.model_copy(update={"heartbeat_seconds": 0.5})
    code = textwrap.dedent(
        f"""
        from fnhub.config import Settings
        from fnhub.worker import supervisor

        supervisor.TEMPLATE = "slow_template"
        sup = supervisor.Supervisor(Settings.model_validate_json({quick.model_dump_json()!r}),
                                    processes=1)
        beats = []
        beat = sup._heartbeat
        sup._heartbeat = lambda: (beats.append(1), beat())
        sup.start()
        print(len(beats))
        sup.shutdown()
        """
    )
    done = _run_supervisor_code(code, str(tmp_path))
    assert int(done.stdout.split()[-1]) >= 3, done.stdout  # (one, before the fork, without)


def test_the_fork_server_starts_with_its_output_on_a_socket() -> None:
    """Under systemd a worker's standard output and error are sockets to journald: the fork
    server inherits them, and they are not connections it would copy to its children."""
    a, b = socket.socketpair()
    with a, b:
        done = subprocess.run(
            [sys.executable, "-c", "import fnhub.worker.template"],
            stdout=a,
            stderr=a,
            timeout=60,
            env={"PYTHONPATH": str(PACKAGE_PARENT), "PATH": "/usr/bin:/bin"},
        )
    assert done.returncode == 0


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
    done = _run_supervisor_code(code)
    lines = done.stdout.strip().splitlines()[-3:]
    assert lines == ["False", "True {}", "[]"], done.stdout + done.stderr
