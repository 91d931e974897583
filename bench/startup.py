"""Start-up benchmark: how soon a freshly exec'd role serves, and what `fnhub --help` costs.

For each source tree given (`--src`, default this checkout's `src`; give the old tree first for
a same-run baseline), repeated `--repeat` times, interleaved so load drifts hit both alike:

- server: exec of `fnhub server` → first 200 on `/healthz` (and the CPU the process used until
  then: on a shared machine the one figure load does not inflate much), then → first 200 on an
  authenticated API route, then the first pass over every parameterless GET route of the API
  (the lazy per-route costs) against a second pass; the server is then SIGKILLed, as a
  process death would be;
- worker (`--processes` children, default 2): exec of `fnhub worker` → its heartbeat in Redis
  → a call (sent then) answered by a child, with the CPU the supervisor and its children used
  until then (`cpu_to_first_call`); then every child is SIGKILLed → a call sent then answered by
  one of their replacements (`children_killed_to_call`), with the CPU the replacements used
  (and the fork server they are forked by, if any, meanwhile);
- beat: exec of `fnhub beat` → it holds the leader lease, → it fired its first tick of a job
  due every second (the job's watermark moved; the watermark is set to the exec's second first,
  so the first tick is the next whole second's), with the CPU it used until each;
- `fnhub --help`: user+system CPU seconds.

Roles start as `python -m fnhub.cli` (`--entry module`: as the `fnhub` console script, whose
`__main__` is the command line) or `python -c "from fnhub.cli import main; main()"` (`--entry
code`: as bench/cluster.py starts them). Redis on 127.0.0.1:6379 (unique key prefix), SQLite
in a temp dir, migrated once beforehand; each tree is byte-compiled first, as pip does on
install (without `.pyc` files, each start compiles fnhub's ~260 modules again: about 1 s more).
Prints a table of medians and writes bench/results/startup.json.

    python bench/startup.py --src /path/to/old/src --src src --repeat 5
"""

from __future__ import annotations

import sys
from pathlib import Path

if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)  # bench/queue.py would shadow the standard library's queue

import argparse
import compileall
import http.client
import json
import os
import resource
import signal
import socket
import statistics
import subprocess
import tempfile
import time
import uuid
from typing import Any

import redis

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = "import fnhub\n\n@fnhub.api()\ndef echo(x: int = 0):\n    return x\n"
POLL = 0.01


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(port: int, path: str, token: str | None = None) -> int:
    """The status of one GET, or 0 when nothing listens yet."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status
    except OSError:
        return 0
    finally:
        conn.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU a process has used so far (/proc; Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def until(check: Any, timeout: float = 60) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if check():
            return time.monotonic()
        time.sleep(POLL)
    raise TimeoutError("not up in time")


def prepare(project: Path, env: dict[str, str]) -> tuple[Any, str]:
    """Settings as the roles will read them from `env`; migrate, apply the project and create an
    API key (as tests/server/conftest.py does)."""
    from fnhub.bootstrap import open_services
    from fnhub.config import Settings
    from fnhub.features import FEATURES
    from fnhub.project import apply_project
    from fnhub.server.auth import create_key

    settings = Settings(
        redis_url=env["FNHUB_REDIS_URL"],
        key_prefix=env["FNHUB_KEY_PREFIX"],
        data_dir=Path(env["FNHUB_DATA_DIR"]),
        db_url=env["FNHUB_DB_URL"],
        project_dir=project,
    )
    services = open_services(settings)
    apply_project(settings, services.scripts, FEATURES)
    _row, token = create_key(services.db, "bench")
    services.close()
    return settings, token


#: how a role is started: as the `fnhub` console script runs it (its `__main__` is the command
#: line's module) or as bench/cluster.py does (`python -c`: no main module)
ENTRIES = {
    "module": ["-m", "fnhub.cli"],
    "code": ["-c", "from fnhub.cli import main; main()"],
}
ENTRY = ENTRIES["module"]


def spawn(src: str, env: dict[str, str], project: Path, *args: str) -> subprocess.Popen[bytes]:
    env = {**env, "PYTHONPATH": f"{src}{os.pathsep}{ROOT}"}
    return subprocess.Popen(
        [sys.executable, *ENTRY, *args, "-p", str(project)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(project / "role.log", "ab"),  # noqa: SIM115 - the child holds it
    )


def kill(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait()


def api_paths(port: int, token: str) -> list[str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/openapi.json", headers={"Authorization": f"Bearer {token}"})
    spec = json.loads(conn.getresponse().read())
    conn.close()
    return sorted(
        p for p, ops in spec["paths"].items() if "get" in ops and "{" not in p and "stream" not in p
        and "feed" not in p and "events" not in p and p.startswith("/api/v1")
    )  # fmt: skip


def server_run(src: str, env: dict[str, str], project: Path, token: str, paths: list[str]) -> dict:
    port = int(env["FNHUB_PORT"])
    started = time.monotonic()
    process = spawn(src, env, project, "server")
    try:
        healthz = until(lambda: get(port, "/healthz") == 200)
        cpu = cpu_seconds(process.pid)  # load-independent: what start-up cost this process
        api = until(lambda: get(port, "/api/v1/functions", token) == 200)
        passes = []
        for _ in range(2):
            t = time.monotonic()
            for path in paths:
                get(port, path, token)
            passes.append(time.monotonic() - t)
        return {
            "healthz": healthz - started,
            "cpu_to_healthz": cpu,
            "api": api - started,
            "first_pass": passes[0],
            "second_pass": passes[1],
        }
    finally:
        kill(process)


def tree_cpu(pid: int) -> float:
    """CPU of a process, of its live descendants and of the children it reaped (/proc; Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    total = sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    for child in children(pid):
        try:
            total += tree_cpu(child)
        except FileNotFoundError:  # exited meanwhile
            pass
    return total


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except FileNotFoundError:
            pass
    return found


def cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return b""


def worker_children(pid: int) -> list[int]:
    """The worker children of a supervisor, started or still starting: spawned by it, or
    forked by its fork server (not its resource tracker nor the fork server)."""
    found = []
    for child in children(pid):
        command = cmdline(child)
        if b"spawn_main" in command:
            found.append(child)
        elif b"forkserver" in command:
            found += children(child)
    return found


def helpers_cpu(pid: int) -> float:
    """CPU of a supervisor's other children: its fork server (whose forks it pays), if any,
    and multiprocessing's resource tracker."""
    total = 0.0
    for child in children(pid):
        if b"spawn_main" not in cmdline(child):
            try:
                total += cpu_seconds(child)
            except FileNotFoundError:
                pass
    return total


def answered(calls: Any, process: subprocess.Popen[bytes], cpu: Any) -> tuple[float, float]:
    """When a call sent now is answered, and `cpu()` then."""
    task = calls.submit("demo.echo", {"x": 1}, wait=True)
    if calls.wait(task.id, 60) is None:
        raise TimeoutError("no answer in time")
    return time.monotonic(), cpu()


def worker_run(src: str, env: dict[str, str], project: Path, settings: Any, processes: int) -> dict:
    """Exec of `fnhub worker` → its heartbeat, → a call (sent then) answered, with the CPU its
    supervisor and children used until then; then every child SIGKILLed → a call answered by
    one of their replacements, with the CPU the replacements used."""
    from fnhub.calling.queue_client import QueueClient
    from fnhub.keys import Keys

    client = redis.Redis.from_url(env["FNHUB_REDIS_URL"])
    keys = Keys(env["FNHUB_KEY_PREFIX"])
    client.delete(keys.workers)
    started = time.monotonic()
    process = spawn(src, env, project, "worker", "--processes", str(processes))
    calls = QueueClient(settings)
    try:
        beat = until(lambda: client.hlen(keys.workers) > 0)
        first, cpu = answered(calls, process, lambda: tree_cpu(process.pid))
        old = worker_children(process.pid)
        helpers_before = helpers_cpu(process.pid)
        killed = time.monotonic()
        for pid in old:
            os.kill(pid, signal.SIGKILL)
        again, child_cpu = answered(
            calls,
            process,
            lambda: (
                sum(cpu_seconds(p) for p in worker_children(process.pid) if p not in old)
                + helpers_cpu(process.pid)
                - helpers_before
            ),
        )
        return {
            "heartbeat": beat - started,
            "first_call": first - started,
            "cpu_to_first_call": cpu,
            "children_killed_to_call": again - killed,
            "children_cpu": child_cpu,
        }
    finally:
        calls.close()
        kill(process)
        client.close()


#: the cron job a beat's run fires (`add_cron_job`)
CRON_JOB = "bench-tick"


def cron_job(settings: Any, present: bool) -> None:
    """Add (or remove) a job due every second: there only while a beat's run needs it, so the
    server's own beat fires nothing during the server's runs."""
    from fnhub.bootstrap import open_services
    from fnhub.cron.jobs import CronJobSpec, JobStore
    from fnhub.revisions import bump

    services = open_services(settings, migrate=False)
    store = JobStore(services.db)
    if present:
        spec = {"id": CRON_JOB, "function": "demo.echo", "expr": "* * * * * *", "overlap": "allow"}
        store.replace(CronJobSpec.model_validate(spec))
    else:
        store.delete(CRON_JOB)
    bump(services.redis, services.keys.cron_revision)
    services.close()


def beat_run(src: str, env: dict[str, str], project: Path, settings: Any) -> dict:
    """Exec of `fnhub beat` → it holds the lease, → it fired the job's first tick (the tick
    after the exec's second), with the CPU it used until each."""
    from fnhub.keys import Keys

    cron_job(settings, True)
    client = redis.Redis.from_url(env["FNHUB_REDIS_URL"])
    keys = Keys(env["FNHUB_KEY_PREFIX"])
    client.delete(keys.beat_leader)
    mark = str(int(time.time())).encode()
    client.hset(keys.cron_fired, CRON_JOB, mark)
    started = time.monotonic()
    process = spawn(src, env, project, "beat")
    try:
        leader = until(lambda: client.exists(keys.beat_leader))
        cpu_leader = cpu_seconds(process.pid)
        tick = until(lambda: client.hget(keys.cron_fired, CRON_JOB) != mark, timeout=30)
        cpu_tick = cpu_seconds(process.pid)
        return {
            "leader": leader - started,
            "cpu_to_leader": cpu_leader,
            "first_tick": tick - started,
            "cpu_to_first_tick": cpu_tick,
        }
    finally:
        kill(process)
        client.delete(keys.beat_leader)
        client.close()
        cron_job(settings, False)


def help_cpu(src: str) -> float:
    env = {**os.environ, "PYTHONPATH": f"{src}{os.pathsep}{ROOT}"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(
        [sys.executable, "-m", "fnhub.cli", "--help"], env=env, capture_output=True, check=True
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--src", action="append", help="a tree holding fnhub/ (repeatable)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--roles", default="server,worker,beat,help")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--processes", type=int, default=2, help="worker children")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/startup.json")
    parser.add_argument("--entry", choices=ENTRIES, default="module", help="how roles start")
    args = parser.parse_args()
    global ENTRY
    ENTRY = ENTRIES[args.entry]
    sources = [str(Path(s).resolve()) for s in args.src or [str(ROOT / "src")]]
    roles = args.roles.split(",")
    for src in sources:  # as an installed wheel has them (PYTHONDONTWRITEBYTECODE stops writes)
        compileall.compile_dir(src, quiet=2)

    project = Path(tempfile.mkdtemp(prefix="fnhub-bench-startup-"))
    (project / "scripts").mkdir()
    (project / "scripts" / "demo.py").write_text(SCRIPT)
    env = {
        **os.environ,
        "FNHUB_REDIS_URL": args.redis,
        "FNHUB_KEY_PREFIX": f"b{uuid.uuid4().hex[:10]}",
        "FNHUB_DATA_DIR": str(project / ".fnhub"),
        "FNHUB_DB_URL": f"sqlite:///{project / 'fnhub.db'}",
        "FNHUB_PORT": str(free_port()),
        "FNHUB_ACCESS_LOG": "false",
    }
    settings, token = prepare(project, env)
    load_before = os.getloadavg()
    runs: dict[str, dict[str, list[dict]]] = {src: {role: [] for role in roles} for src in sources}
    paths: list[str] = []
    for i in range(args.repeat):
        for src in sources:
            if "server" in roles:
                if not paths:  # one untimed start to list the routes
                    process = spawn(src, env, project, "server")
                    until(lambda: get(int(env["FNHUB_PORT"]), "/healthz") == 200)
                    paths = api_paths(int(env["FNHUB_PORT"]), token)
                    kill(process)
                runs[src]["server"].append(server_run(src, env, project, token, paths))
            if "worker" in roles:
                runs[src]["worker"].append(worker_run(src, env, project, settings, args.processes))
            if "beat" in roles:
                runs[src]["beat"].append(beat_run(src, env, project, settings))
            if "help" in roles:
                runs[src]["help"].append({"cpu": help_cpu(src)})
        print(f"round {i + 1}/{args.repeat} done, load {os.getloadavg()[0]:.2f}", file=sys.stderr)
    load_after = os.getloadavg()
    client = redis.Redis.from_url(args.redis)
    for key in client.scan_iter(match=f"{env['FNHUB_KEY_PREFIX']}:*", count=1000):
        client.delete(key)
    client.close()

    medians = {
        src: {
            f"{role}.{name}": statistics.median(run[name] for run in role_runs)
            for role, role_runs in by_role.items()
            for name in role_runs[0]
        }
        for src, by_role in runs.items()
    }
    names = list(medians[sources[0]])
    print(f"\nmedians of {args.repeat} runs, seconds; {len(paths)} GET routes per pass")
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f}")
    print("measure".ljust(30) + "".join(Path(s).parent.name[-18:].rjust(20) for s in sources))
    for name in names:
        print(name.ljust(30) + "".join(f"{medians[s][name]:20.3f}" for s in sources))
    if len(sources) > 1:
        print("ratio last/first".ljust(30))
        for name in names:
            print(f"  {name.ljust(28)}{medians[sources[-1]][name] / medians[sources[0]][name]:.2f}")
    result = {
        "load_average": {"before": load_before, "after": load_after},
        "repeat": args.repeat,
        "routes_per_pass": len(paths),
        "medians": medians,
        "runs": runs,
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
