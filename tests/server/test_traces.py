"""OpenTelemetry traces of an HTTP call (`tracing: file`): the server span under the caller's
`traceparent`, the task's `enqueue` span under it, the worker's `run` span under that."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from tests.conftest import wait_for
from tests.server.conftest import close_stack, make_stack
from tests.spans import read_spans, trace_of


@pytest.mark.timeout(120)
def test_http_call_is_one_trace_from_request_to_worker(tmp_path: Path) -> None:
    folder = tmp_path / "traces"
    stack = make_stack(tmp_path / "s", tracing="file", tracing_dir=str(folder))
    try:
        trace_id, client_span = os.urandom(16).hex(), os.urandom(8).hex()
        with stack.admin() as client:
            answer = client.post(
                "/api/v1/functions/demo.add/call",
                json={"kwargs": {"a": 1, "b": 2}},
                headers={"traceparent": f"00-{trace_id}-{client_span}-01"},
            )
        assert answer.status_code == 200, answer.text
        expected = {"POST /api/v1/functions/{ref}/call", "enqueue demo.add", "run demo.add"}
        wait_for(lambda: expected <= set(trace_of(read_spans(folder), trace_id)), timeout=20)
        spans = trace_of(read_spans(folder), trace_id)
        assert set(spans) == expected
        server = spans["POST /api/v1/functions/{ref}/call"]
        enqueue, run = spans["enqueue demo.add"], spans["run demo.add"]
        assert server["kind"] == "SERVER" and server["parent_id"] == client_span
        assert server["attributes"]["http.route"] == "/api/v1/functions/{ref}/call"
        assert server["attributes"]["http.response.status_code"] == 200
        assert enqueue["kind"] == "PRODUCER" and enqueue["parent_id"] == server["span_id"]
        assert run["kind"] == "CONSUMER" and run["parent_id"] == enqueue["span_id"]
        task_id = enqueue["attributes"]["fnhub.task_id"]
        assert run["attributes"]["fnhub.task_id"] == task_id
        assert run["attributes"]["fnhub.function"] == "demo.add"
        assert run["attributes"]["fnhub.status"] == "success"
        assert run["attributes"]["fnhub.attempt"] == 1
        assert 0 <= run["attributes"]["fnhub.queue_wait_seconds"] < 10
        assert run["status"] == "UNSET" and server["status"] == "UNSET"
        # the worker ran inside the request: its span lies within the server span
        assert server["start"] <= enqueue["start"] <= run["start"] <= run["end"] <= server["end"]
        assert server["resource"]["fnhub.role"] == "server"
        assert run["resource"]["fnhub.role"] == "worker"

        # a failing call: the run span and the server span say so
        trace_id = os.urandom(16).hex()
        with stack.admin() as client:
            answer = client.post(
                "/api/v1/functions/demo.fail/call",
                json={"kwargs": {"message": "no"}},
                headers={"traceparent": f"00-{trace_id}-{client_span}-01"},
            )
        assert answer.status_code != 200
        wait_for(lambda: "run demo.fail" in trace_of(read_spans(folder), trace_id), timeout=20)
        run = trace_of(read_spans(folder), trace_id)["run demo.fail"]
        assert run["status"] == "ERROR" and run["attributes"]["fnhub.status"] == "failure"
        assert run["attributes"]["error.type"] == "ValueError"
    finally:
        close_stack(stack)
