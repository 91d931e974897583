"""`log_format: json`: every role's stderr is one JSON object per line (time, level, logger,
message, and the exception when there is one), read from real processes' output."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import wait_for

from .conftest import Stack, _cli, close_stack, make_stack

SCRIPT = """
import logging

import fnhub


@fnhub.api("Logs an exception it caught")
def oops():
    try:
        1 / 0
    except ZeroDivisionError:
        logging.getLogger("demo.oops").exception("dividing went wrong")
    return "logged"
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = make_stack(
        tmp_path_factory.mktemp("json-logs"), script=SCRIPT, log_format="json", access_log="true"
    )
    yield s
    close_stack(s)


def _lines(path: Path) -> list[dict[str, object]]:
    """Every line of a process's stderr, each required to be one JSON object."""
    out = []
    for line in path.read_text().splitlines():
        record = json.loads(line)  # fails the test on any line that is not JSON
        assert isinstance(record, dict), line
        assert {"time", "level", "logger", "message"} <= record.keys(), line
        assert time.strptime(str(record["time"]), "%Y-%m-%dT%H:%M:%S.%fZ")
        out.append(record)
    return out


def test_every_role_logs_json_lines(stack: Stack) -> None:
    beat = _cli("beat", "-p", str(stack.dir), env=stack.env, log=stack.dir / "beat.log")
    stack.extra.append(beat)
    with stack.admin() as c:
        r = c.post("/api/v1/functions/demo.oops/call", json={"kwargs": {}})
        assert r.json()["result"] == "logged"

    def worker_logged() -> bool:
        return any(r["logger"] == "demo.oops" for r in _lines(stack.dir / "worker.log"))

    wait_for(worker_logged, timeout=10)
    [record] = [r for r in _lines(stack.dir / "worker.log") if r["logger"] == "demo.oops"]
    assert record["level"] == "ERROR" and record["message"] == "dividing went wrong"
    exception = str(record["exception"])
    assert exception.startswith("Traceback") and "ZeroDivisionError" in exception
    assert any(r["logger"].startswith("fnhub.worker") for r in _lines(stack.dir / "worker.log"))

    def access() -> list[dict]:
        path = "/api/v1/functions/demo.oops/call"
        lines = _lines(stack.dir / "server.log")
        return [r for r in lines if r["logger"] == "fnhub.access" and r.get("path") == path]

    # the access line is written once the answer went out: the client can read it first
    wait_for(access, timeout=10)
    server = _lines(stack.dir / "server.log")
    [call] = access()
    assert call["method"] == "POST" and call["status"] == 200 and call["request_id"]
    assert any(r["logger"] == "fnhub.server" and r["level"] == "INFO" for r in server)

    wait_for(lambda: any("beat" in str(r["message"]) for r in _lines(stack.dir / "beat.log")), 20)
