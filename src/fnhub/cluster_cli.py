"""`fnhub cluster`: every server, beat and worker process, and the Redis and database they share.

Reads Redis and the database directly, through the same code as `GET /api/cluster`
(`fnhub.cluster`), so `--json` prints what the API answers. One table per role, fitted to the
terminal like every listing (`fnhub.cli_output`).
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.text import Text

from fnhub.cli_output import Column, JsonOpt, cell, fitted_table, out, print_json, show
from fnhub.cli_settings import ProjectOpt, settings_or_exit


def cluster(project: ProjectOpt = None, as_json: JsonOpt = False) -> None:
    """Every server, beat and worker; Redis and the database."""
    from fnhub.bootstrap import open_services
    from fnhub.cluster import gather

    settings = settings_or_exit(project)
    services = open_services(settings, migrate=False)
    try:
        data = gather(services.redis, services.keys, services.db, settings)
    finally:
        services.close()
    if as_json:
        print_json(data)
        return
    screen = out()
    print_cluster(screen, data)


def seen(member: dict[str, Any]) -> Text:
    """ "3 s ago", red and marked when the member missed its heartbeats."""
    age = f"{member['age']:.0f} s ago"
    return Text(f"{age} (stale)", style="red") if member["stale"] else Text(age)


def print_cluster(screen: Console, data: dict[str, Any]) -> None:
    servers = [
        (s["id"], s.get("host"), s.get("url"), ", ".join(s.get("subscriptions") or []) or None,
         s.get("websub_claims"), s.get("version"), seen(s))
        for s in data["servers"]
    ]  # fmt: skip
    columns = [
        Column("server"), Column("host", 3), Column("address", 1), Column("subscriptions", 2),
        Column("hub claims", 4, "right"), Column("version", 5), Column("last seen"),
    ]  # fmt: skip
    show(screen, fitted_table(screen, columns, servers, "servers"))
    beats = [
        (b["id"], b.get("host"), _beat_state(b, data["beat_leader"]), b.get("jobs"),
         b.get("version"), seen(b))
        for b in data["beats"]
    ]  # fmt: skip
    columns = [
        Column("beat"), Column("host", 2), Column("state"), Column("jobs", 3, "right"),
        Column("version", 4), Column("last seen"),
    ]  # fmt: skip
    show(screen, fitted_table(screen, columns, beats, "beats"))
    workers = [
        (w["id"], w.get("host"), ",".join(w.get("queues") or []), _busy(w),
         w.get("version"), seen(w))
        for w in data["workers"]
    ]  # fmt: skip
    columns = [
        Column("worker"), Column("host", 3), Column("queues", 1),
        Column("busy", 2, "right"), Column("version", 4), Column("last seen"),
    ]  # fmt: skip
    show(screen, fitted_table(screen, columns, workers, "workers"))
    running = [
        (w["id"], t.get("pid"), t.get("function"), t.get("task"), _source(t), _ran(t, w))
        for w in data["workers"] for t in w.get("running") or ()
    ]  # fmt: skip
    if running:
        columns = [
            Column("worker", 3), Column("pid"), Column("function"),
            Column("task", 1), Column("from", 2), Column("for", 0, "right"),
        ]  # fmt: skip
        show(screen, fitted_table(screen, columns, running, "running for over 0.1 s"))
    show(screen, _facts(data))


def _ran(task: dict[str, Any], worker: dict[str, Any]) -> Text:
    """ "4.2 s"; "4.2 s lost" in red when its worker is stale (the task was released)."""
    ran = f"{task['running_for']:.1f} s"
    return Text(f"{ran} lost", style="red") if worker["stale"] else Text(ran)


def _source(task: dict[str, Any]) -> str | None:
    """Its queue, or "<subscription> (direct)" for a direct child's."""
    subscription = task.get("subscription")
    return f"{subscription} (direct)" if subscription else task.get("queue")


def _busy(worker: dict[str, Any]) -> str | None:
    """ "1/3": children running a task, of its processes and direct children (an older worker
    says no busy)."""
    processes = worker.get("processes")
    busy = worker.get("busy")
    if busy is None:
        return str(processes)
    return f"{busy}/{(processes or 0) + (worker.get('direct') or 0)}"


def _beat_state(beat: dict[str, Any], leader: str | None) -> Text:
    if beat["id"] == leader:
        return Text("leading", style="green")
    return cell("standing by")


def _facts(data: dict[str, Any]) -> Text:
    r, d = data["redis"], data["database"]
    via = f" via Sentinel ({r['url']})" if r["sentinel"] else ""
    memory = r.get("used_memory_human") or "?"
    lines = Text()
    lines.append(f"Redis {r.get('version')} {r.get('role')} at {r['address']}{via}, ")
    lines.append(f"{memory} used, {r.get('replicas')} replicas, {r.get('clients')} clients\n")
    lines.append(f"database {d['dialect']} {d['server_version']}, ")
    if d["current"]:
        lines.append(f"schema up to date ({len(d['head'])} migration heads)")
    else:  # a newer fnhub migrated it, or nobody did yet
        at = ", ".join(d["revision"]) or "none"
        lines.append(f"schema at {at}, newest {', '.join(d['head'])}", style="red")
    lines.append(f"\n{d['url']}")
    return lines
