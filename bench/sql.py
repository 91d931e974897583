"""Throughput of compiled SQL filters against hand-written Python doing the same work.

Run with ``python bench/sql.py``.  Each row times ``Query.evaluate`` over a batch of small JSON
payloads, and in the same run a baseline: ``orjson.loads`` plus a hand-written dict filter with
the same result.  Rounds alternate between the two and the best round counts, so the ratio
stays meaningful on a small, noisy machine.  Results go to ``bench/results/sql.json``.
"""

from __future__ import annotations

import sys

# bench/queue.py is named like the stdlib `queue` module: keep this folder off the import path
sys.path[:] = [p for p in sys.path if not p.endswith("bench")]

import json
import math
import platform
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from fnhub.sql import SqlContext, compile_sql

CTX = SqlContext(qos=1, topic="sensors/berlin/7", client_id="dev-7")
SITES = ["berlin", "bonn", "paris", "boston", "lima", "bremen"]
ROUNDS = 5
ROUND_SECONDS = 0.4


def make_payloads(count: int = 2000, seed: int = 7) -> list[bytes]:
    rng = random.Random(seed)
    return [
        orjson.dumps(
            {
                "id": i,
                "temp": round(rng.uniform(-10, 60), 2),
                "site": rng.choice(SITES),
                "unit": "C",
                "ok": rng.random() < 0.9,
                "delta": rng.randint(-50, 50),
                "meta": {"fw": "1.4.2", "rssi": rng.randint(-90, -30)},
            }
        )
        for i in range(count)
    ]


def baseline_pass_through(payload: bytes) -> dict[str, Any] | None:
    message = orjson.loads(payload)
    return message if type(message) is dict else {}


def baseline_typical(payload: bytes) -> dict[str, Any] | None:
    message = orjson.loads(payload)
    if type(message) is not dict:
        return None
    temp, site = message.get("temp"), message.get("site")
    if type(temp) in (int, float) and temp > 30 and type(site) is str and site.startswith("b"):
        message["qos"] = CTX.qos
        message["topic"] = CTX.topic
        return message
    return None


def baseline_heavy(payload: bytes) -> dict[str, Any] | None:
    message = orjson.loads(payload)
    if type(message) is not dict:
        return None
    temp, site, ident = message.get("temp"), message.get("site"), message.get("id")
    if not (type(temp) in (int, float) and 0 <= temp <= 100):
        return None
    if site not in ("berlin", "bonn", "paris"):
        return None
    fahrenheit = temp * 1.8 + 32
    delta = message.get("delta")
    return {
        "id": ident,
        "tempF": math.floor(fahrenheit * 10 + 0.5) / 10,
        "site": site.upper(),
        "delta": abs(delta) if type(delta) is int else None,
        "bucket": ident % 7 if type(ident) is int else None,
        "key": f"{site}-{ident}",
        "rssi": message.get("meta", {}).get("rssi"),
    }


CASES: list[tuple[str, str, Callable[[bytes], Any]]] = [
    ("pass-through", "SELECT *", baseline_pass_through),
    (
        "typical filter",
        "SELECT *, qos() AS qos, topic() AS topic WHERE temp > 30 AND site LIKE 'b%'",
        baseline_typical,
    ),
    (
        "arithmetic/functions",
        "SELECT id, round(temp * 1.8 + 32, 1) AS tempF, upper(site) AS site, abs(delta) AS delta, "
        "mod(id, 7) AS bucket, concat(site, '-', id) AS key, meta.rssi AS rssi "
        "WHERE temp BETWEEN 0 AND 100 AND site IN ('berlin', 'bonn', 'paris')",
        baseline_heavy,
    ),
]


def rate(fn: Callable[[bytes], Any], payloads: list[bytes]) -> float:
    """Messages per second over as many passes of ``payloads`` as fit in one round."""
    done, start = 0, time.perf_counter()
    while True:
        for payload in payloads:
            fn(payload)
        done += len(payloads)
        elapsed = time.perf_counter() - start
        if elapsed >= ROUND_SECONDS:
            return done / elapsed


def main() -> None:
    payloads = make_payloads()
    rows = []
    loads_only = max(rate(orjson.loads, payloads) for _ in range(ROUNDS))
    for name, sql, baseline in CASES:
        query = compile_sql(sql)
        evaluate = query.evaluate
        outputs = sum(evaluate(p, CTX) is not None for p in payloads)
        expected = sum(baseline(p) is not None for p in payloads)
        assert outputs == expected, (name, outputs, expected)  # same work, same result
        best_sql = best_base = 0.0
        for _ in range(ROUNDS):  # alternate so drift on a noisy machine hits both sides
            best_sql = max(best_sql, rate(lambda p, e=evaluate: e(p, CTX), payloads))
            best_base = max(best_base, rate(baseline, payloads))
        rows.append(
            {
                "case": name,
                "sql": sql,
                "passing": outputs / len(payloads),
                "evaluate_msgs_per_s": round(best_sql),
                "baseline_msgs_per_s": round(best_base),
                "ratio_to_baseline": round(best_sql / best_base, 3),
            }
        )
    print(f"orjson.loads alone: {loads_only:,.0f} msgs/s  ({len(payloads)} payloads)")
    print(f"{'case':<22}{'evaluate msgs/s':>18}{'baseline msgs/s':>18}{'ratio':>8}{'pass':>7}")
    for row in rows:
        print(
            f"{row['case']:<22}{row['evaluate_msgs_per_s']:>18,}{row['baseline_msgs_per_s']:>18,}"
            f"{row['ratio_to_baseline']:>8.2f}{row['passing']:>7.0%}"
        )
    result = {
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "payloads": len(payloads),
        "payload_bytes_avg": round(sum(map(len, payloads)) / len(payloads)),
        "orjson_loads_msgs_per_s": round(loads_only),
        "rows": rows,
    }
    out = Path(__file__).parent / "results" / "sql.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
