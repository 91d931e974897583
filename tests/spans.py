"""Reading the spans of `tracing: file` (`fnhub.tracing.otel.JsonLinesExporter`): one JSON object
per line, a file per process, written as each span ends."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson


def read_spans(folder: Path) -> list[dict[str, Any]]:
    spans: list[dict[str, Any]] = []
    for path in sorted(folder.glob("spans-*.jsonl")):
        spans.extend(orjson.loads(line) for line in path.read_bytes().splitlines() if line)
    return spans


def trace_of(spans: list[dict[str, Any]], trace_id: str) -> dict[str, dict[str, Any]]:
    """The spans of one trace by name (a trace here never has two spans of one name)."""
    mine = [s for s in spans if s["trace_id"] == trace_id]
    by_name = {s["name"]: s for s in mine}
    assert len(by_name) == len(mine), [s["name"] for s in mine]
    return by_name
