"""`/metrics` per function: calls by final status, run-time and queue-wait histograms, after
real calls through a real server and worker."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from .conftest import Stack, close_stack, make_stack


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = make_stack(tmp_path_factory.mktemp("function-metrics"))
    yield s
    close_stack(s)


def _sample(text: str, name: str, **labels: str) -> float:
    """The value of the one sample `name{labels}` (labels in any order)."""
    for line in text.splitlines():
        match = re.fullmatch(r"(\w+)(?:\{(.*)\})? (\S+)", line)
        if not match or match[1] != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match[2] or ""))
        if found == labels:
            return float(match[3])
    raise AssertionError(f"no sample {name}{labels} in /metrics")


def test_calls_run_and_wait_per_function(stack: Stack) -> None:
    with stack.admin() as c:
        for a in range(3):
            r = c.post("/api/v1/functions/demo.add/call", json={"kwargs": {"a": a, "b": 1}})
            assert r.json()["status"] == "success"
        for _ in range(2):
            r = c.post("/api/v1/functions/demo.fail/call", json={"kwargs": {}})
            assert r.status_code == 500 and r.json()["error"]["error_type"] == "ValueError"
        r = c.post("/api/v1/functions/demo.slow/call", json={"kwargs": {"seconds": 5}})
        assert r.status_code == 504
        text = c.get("/metrics").text
    calls = "fnhub_function_calls_total"
    assert _sample(text, calls, function="demo.add", status="success") == 3
    assert _sample(text, calls, function="demo.fail", status="failure") == 2
    assert f'{calls}{{function="demo.add",status="failure"}}' not in text
    assert f'{calls}{{function="demo.fail",status="success"}}' not in text
    assert _sample(text, calls, function="demo.slow", status="timeout") == 1
    # a task killed at its timeout has no measured run (as in the per-queue histogram)
    for function, n in [("demo.add", 3), ("demo.fail", 2)]:
        for series in ("fnhub_function_run_seconds", "fnhub_function_wait_seconds"):
            assert _sample(text, f"{series}_count", function=function) == n
            assert _sample(text, f"{series}_bucket", function=function, le="+Inf") == n
            assert _sample(text, f"{series}_bucket", function=function, le="300.0") == n
            assert 0 <= _sample(text, f"{series}_sum", function=function) < 30
    # the per-queue series are unchanged
    assert _sample(text, "fnhub_task_run_seconds_count", queue="sync") == 5
