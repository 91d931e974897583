"""How fast the task-record listing stays over 100,000 records, per filter and page depth.

Run with ``python bench/records_list.py [DB_URL]`` (default: SQLite in a temp folder; a
PostgreSQL or MySQL/MariaDB URL names an empty database to fill). Seeds N records the way the
recorder writes them (20 functions, 90 % successes, a few origins, errors on failures, kwargs
and logs), then times `task_history.list_records` (what `GET /api/v1/tasks` and `fnhub tasks`
run): the first page of each filter with and without the count, a page 40,000 rows deep by
cursor against the same by offset, and one full record. Best of 5 rounds, in milliseconds.
Results go to ``bench/results/records_list.json`` (SQLite) or ``records_list-<dialect>.json``.
"""

from __future__ import annotations

import sys

# bench/queue.py is named like the stdlib `queue` module: keep this folder off the import path
sys.path[:] = [p for p in sys.path if not p.endswith("bench")]

import json
import platform
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fnhub.records import to_row, upsert_records
from fnhub.store.db import Database
from fnhub.task_history import RecordFilter, list_records, record_detail
from fnhub.tasks import TaskResult

N = 100_000
ROUNDS = 5
DEPTH = 40_000


def seed(db: Database, n: int) -> list[str]:
    rng = random.Random(7)
    now = time.time()
    ids = []
    rows = []
    for i in range(n):
        status = "success" if rng.random() < 0.9 else rng.choice(["failure", "timeout"])
        origin = rng.choice(["api", "api", "endpoint", "cron", "subscription"])
        function = f"s{i % 4}.f{i % 20}"
        task_id = f"{i:012x}{rng.getrandbits(48):012x}"
        ids.append(task_id)
        rows.append(
            to_row(
                TaskResult(
                    id=task_id,
                    function=function,
                    status=status,
                    origin=origin,
                    origin_id=f"{origin}-{i % 7}",
                    kwargs={"order": i, "note": "x" * 200},
                    trigger_time=now - (n - i) * 0.5,
                    start_time=now - (n - i) * 0.5 + 0.001,
                    end_time=now - (n - i) * 0.5 + 0.01,
                    result={"ok": i} if status == "success" else None,
                    error_type=None if status == "success" else "ValueError",
                    error_message=None if status == "success" else f"order {i} broke: disk full",
                    logs="a line of output\n" * 5,
                )
            )
        )
    for start in range(0, n, 1000):
        upsert_records(db, rows[start : start + 1000])
    return ids


def best_ms(fn: Callable[[], Any]) -> float:
    times = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return round(min(times) * 1000, 2)


def cursor_at(db: Database, where: RecordFilter, depth: int) -> str:
    cursor = None
    walked = 0
    while walked < depth:
        page = list_records(db, where, cursor=cursor, limit=500)
        walked += len(page.items)
        cursor = page.next_cursor
        assert cursor
    return cursor


def main() -> None:
    url = sys.argv[1] if len(sys.argv) > 1 else None
    folder = tempfile.mkdtemp()
    db = Database(url or f"sqlite:///{Path(folder) / 'bench.db'}")
    db.migrate()
    started = time.perf_counter()
    ids = seed(db, N)
    seeded = time.perf_counter() - started
    cases = {
        "no filter": RecordFilter(),
        "function": RecordFilter(function="s1.f5"),
        "status failure": RecordFilter(status="failure"),
        "origin": RecordFilter(origin="cron"),
        "origin + origin_id": RecordFilter(origin="cron", origin_id="cron-3"),
        "function + status": RecordFilter(function="s1.f5", status="timeout"),
        "last hour": RecordFilter(since=time.time() - 3600),
        "q (error text)": RecordFilter(q="DISK FULL"),
        "q, rare": RecordFilter(q="order 77777 broke"),
    }
    rows = []
    for name, where in cases.items():
        rows.append(
            {
                "case": name,
                "first_page_ms": best_ms(lambda w=where: list_records(db, w, limit=50)),
                "first_page_counted_ms": best_ms(
                    lambda w=where: list_records(db, w, limit=50, count=True)
                ),
            }
        )
    everything = RecordFilter()
    deep = cursor_at(db, everything, DEPTH)
    depth = {
        "cursor_page_ms": best_ms(lambda: list_records(db, everything, cursor=deep, limit=50)),
        "offset_page_ms": best_ms(lambda: list_records(db, everything, offset=DEPTH, limit=50)),
    }
    detail_ms = best_ms(lambda: record_detail(db, ids[N // 2]))
    report = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "dialect": db.engine.dialect.name,
        "records": N,
        "seed_seconds": round(seeded, 1),
        "rows": rows,
        f"page_{DEPTH}_deep": depth,
        "record_detail_ms": detail_ms,
    }
    db.dispose()
    name = "records_list.json" if not url else f"records_list-{report['dialect']}.json"
    out = Path(__file__).parent / "results" / name
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
