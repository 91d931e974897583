"""Schemathesis hooks for the API fuzz tests (`SCHEMATHESIS_HOOKS=tests.server.fuzz_checks`).

`error_shape`: every 4xx/5xx is fnhub's JSON error `{"error": {"code", "message"}}`, and a 5xx
is only ever one of the outcomes the API documents for a call (no worker on the queue, a full
queue, a function out of time) or, while Redis is down, `unavailable` with `Retry-After`. The
fuzz script's functions never raise, so `function_failed` is not among them; `internal` (the
last resort) never is.
"""

from __future__ import annotations

import os
from typing import Any

import orjson
import schemathesis

#: the 5xx codes a healthy stack may answer: the call's documented outcomes
OUTCOMES = {"no_worker", "queue_full", "function_timeout", "task_expired", "no_result"}
#: routes whose answers are not fnhub's error shape by design
OTHER_SHAPES = {
    "/websub/hub": "the W3C hub answers text/plain",
    "/readyz": "readiness answers its checks, 503 when one fails",
}


def _outage() -> bool:
    return os.environ.get("FNHUB_FUZZ_OUTAGE") == "1"


@schemathesis.check
def error_shape(ctx: Any, response: Any, case: Any) -> None:
    status = response.status_code
    if status < 400 or case.operation.path in OTHER_SHAPES:
        return
    media = response.headers.get("content-type", [""])[0].split(";")[0]
    text = response.text_lossy()[:200]
    if media != "application/json":
        raise AssertionError(f"{status} answered as {media!r}, not JSON: {text!r}")
    try:
        error = orjson.loads(response.content)["error"]
        code, message = error["code"], error["message"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        raise AssertionError(f"{status} without the error shape: {text!r}") from None
    if not isinstance(code, str) or not isinstance(message, str) or not message:
        raise AssertionError(f"{status} with an empty code or message: {text!r}")
    if status < 500:
        return
    allowed = OUTCOMES | ({"unavailable"} if _outage() else set())
    if code not in allowed:
        raise AssertionError(f"server error {status} {code}: {message}")
    if code == "unavailable" and "retry-after" not in response.headers:
        raise AssertionError(f"503 unavailable without Retry-After: {message}")
