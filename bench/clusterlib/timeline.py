"""Where an HTTP call's lateness went around a fault: the per-item timeline of a kept run.

`bench/cluster.py --keep` leaves raw.json in its run folder: for every async HTTP call when it
was due, when it left the load's in-flight limit, when a server answered it and which one
(`via`), and when it ran. This splits each half second of calls around each fault's injection
into those parts, so a late phase says whether the seconds went waiting for the load's limit
(the servers answering too slowly for the rate: a backlog), in the servers' answers, or in the
queue after the answer:

    python bench/cluster.py --timeline RESULTS.json RUN_FOLDER/raw.json [--fault NAME]
"""

from __future__ import annotations

import collections
import statistics
from dataclasses import dataclass
from typing import Any

#: a call that ran more than this after it was due is late (as `faults.analyse` counts)
LATE_SECONDS = 1.0
BIN_SECONDS = 0.5


@dataclass
class Bin:
    """The calls due in one half second, and where their time went (seconds)."""

    at: float  # start of the bin, seconds after the injection
    calls: int
    late: int  # ran over LATE_SECONDS after due, or never
    via: tuple[int, int]  # answered by server 0 / server 1
    waited: list[float]  # due → left the limit
    answer: list[float]  # left → answered
    queued: list[float]  # answered → ran
    total: list[float]  # due → ran
    refused: int


def bins(fault: dict[str, Any], raw: dict[str, Any]) -> list[Bin]:
    """The HTTP calls of one fault's phase (as `analyse` reports it), by half second of due."""
    sent: dict[str, float] = raw["sent"]["http"]
    left: dict[str, float] = raw["left"]["http"]
    answered: dict[str, float] = raw["answered"]["http"]
    via: dict[str, int] = raw.get("via", {}).get("http", {})
    runs: dict[str, list[float]] = raw["runs"].get("http", {})
    start, stop, inject = fault["start"], fault["stop"], fault["inject"]
    by_bin: dict[int, list[str]] = collections.defaultdict(list)
    for ident, due in sent.items():
        if start <= due < stop:
            by_bin[int((due - inject) // BIN_SECONDS)].append(ident)
    refused = collections.Counter(
        int((t - inject) // BIN_SECONDS) for t in raw["refused"]["http"] if start <= t < stop
    )
    out = []
    for k in sorted(by_bin):
        ids = by_bin[k]
        ran = {i: min(runs[i]) for i in ids if runs.get(i)}
        served = collections.Counter(via.get(i) for i in ids)
        out.append(
            Bin(
                at=k * BIN_SECONDS,
                calls=len(ids),
                late=sum(1 for i in ids if i not in ran or ran[i] - sent[i] > LATE_SECONDS),
                via=(served.get(0, 0), served.get(1, 0)),
                waited=[left[i] - sent[i] for i in ids if i in left],
                answer=[answered[i] - left[i] for i in ids if i in answered and i in left],
                queued=[ran[i] - answered[i] for i in ids if i in ran and i in answered],
                total=[ran[i] - sent[i] for i in ran],
                refused=refused.get(k, 0),
            )
        )
    return out


def _med_max(values: list[float]) -> str:
    if not values:
        return f"{'-':>11}"
    return f"{statistics.median(values):5.2f} {max(values):5.2f}"


def table(results: dict[str, Any], raw: dict[str, Any], fault_name: str = "") -> str:
    """Each fault's timeline as text: one line per half second (medians and maxima)."""
    lines = []
    for fault in results["faults"]:
        if fault_name and fault_name.lower() not in fault["fault"].lower():
            continue
        http = fault["flows"].get("http", {})
        lines.append(
            f"== {fault['fault']}: back to normal {fault['recovery_s']} s; HTTP "
            f"{http.get('late')} late, normal again {http.get('normal_again_at')} s"
        )
        lines.append(
            "   at calls late via 0/1  waited med max  answer med max  queued med max"
            "  total max refused"
        )
        for b in bins(fault, raw):
            lines.append(
                f"{b.at:5.1f} {b.calls:5d} {b.late:4d} {b.via[0]:4d}/{b.via[1]:<4d} "
                f"{_med_max(b.waited)}     {_med_max(b.answer)}     {_med_max(b.queued)}"
                f"     {max(b.total, default=0):5.2f} {b.refused:5d}"
            )
    return "\n".join(lines)
