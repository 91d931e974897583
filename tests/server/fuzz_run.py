"""One schemathesis run over the whole OpenAPI of a real stack, inside a network namespace.

Run as `unshare -n python -m tests.server.fuzz_run <folder> [--outage] [--max-time N] ...` by
`test_fuzz.py`. The fuzzer makes up connector settings, callback and topic URLs, so the server
would otherwise try hosts anywhere; in a namespace of its own only loopback exists, with a
Redis of the run's own (so also an outage the run controls). Writes `<folder>/result.json`.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson
from tests.private_redis import PrivateRedis
from tests.server.conftest import close_stack, make_stack

#: functions that answer whatever kwargs they get: a 500 from the stack is then never the
#: function's (`function_failed`) but the server's
SCRIPT = """
import fnhub


@fnhub.api("Echo kwargs back")
def echo(**kwargs):
    return kwargs


@fnhub.api("Greet")
def greet(name: str = "world"):
    return f"hello {name}"
"""

#: all of schemathesis's checks but two that judge what is not a bug here:
#: `positive_data_acceptance` expects 2xx for schema-valid data, but a valid call to a
#: function that does not exist is a 404 and a valid cron job on a random function a 422;
#: `use_after_free`: a deleted script's versions stay readable on purpose (the task records
#: name them)
EXCLUDED_CHECKS = ["positive_data_acceptance", "use_after_free"]

#: the line `errors.internal_error` logs for each JSON 500 `internal`
INTERNAL = re.compile(r".*fnhub\.server\.errors: request \S+ failed.*")

CONFIG = """
[checks.not_a_server_error]
# 503 no_worker / queue_full (a random queue name has no worker) and 504 function_timeout
# (a timeout of 1e-300 s) are documented outcomes; `error_shape` (fuzz_checks.py) admits only
# those codes, in fnhub's JSON error shape
expected-statuses = ["2XX", "3XX", "4XX", "503", "504"]
"""


def _recovered(stack_url: str, token: str, timeout: float) -> float | None:
    """Seconds until a call succeeds again, or None."""
    start = time.monotonic()
    headers = {"Authorization": f"Bearer {token}"}
    while time.monotonic() - start < timeout:
        try:
            answer = httpx.post(
                f"{stack_url}/api/v1/functions/demo.echo/call",
                json={"kwargs": {"back": True}},
                headers=headers,
                timeout=10,
            )
            if answer.status_code == 200:
                return time.monotonic() - start
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    return None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("folder", type=Path)
    parser.add_argument("--outage", action="store_true", help="run with Redis down")
    parser.add_argument("--max-time", type=int, default=90)
    parser.add_argument("--max-examples", type=int, default=10)
    parser.add_argument("--phases", default="examples,coverage,fuzzing,stateful")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    folder: Path = args.folder
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    own = PrivateRedis(folder / "redis")
    own.start()
    # /metrics declares its optional key in the OpenAPI document: hold it to that (ignored_auth)
    stack = make_stack(folder / "stack", script=SCRIPT, redis_url=own.url, metrics_auth="true")
    result: dict[str, object] = {}
    try:
        if args.outage:
            own.stop()
        (folder / "schemathesis.toml").write_text(CONFIG)
        command = [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "--config-file",
            str(folder / "schemathesis.toml"),
            "run",
            f"{stack.url}/openapi.json",
            *("-H", f"Authorization: Bearer {stack.token}"),
            *("--checks", "all", "--exclude-checks", ",".join(EXCLUDED_CHECKS)),
            *("--phases", args.phases),
            *("--max-examples", str(args.max_examples), "--max-time", str(args.max_time)),
            # a long-poll (`wait`) may rightly last 60 s: only a hang past that is a failure
            *("--request-timeout", "75", "--max-response-time", "70"),
            *("--workers", "1", "--no-color"),
            # the SSE feed never ends (each event is JSON in `data`, which ST108 reads as a
            # schema violation); tests/server/test_console_feed.py tests it as a stream
            *("--exclude-path", "/api/v1/events"),
            *("--suppress-health-check", "all", "--warnings", "off"),
            *(("--seed", str(args.seed)) if args.seed is not None else ()),
        ]
        env = {
            **os.environ,
            "SCHEMATHESIS_HOOKS": "tests.server.fuzz_checks",
            "FNHUB_FUZZ_OUTAGE": "1" if args.outage else "0",
        }
        started = time.monotonic()
        run = subprocess.run(command, env=env, capture_output=True, text=True, cwd=folder)
        result.update(
            exit_code=run.returncode,
            seconds=round(time.monotonic() - started, 1),
            output=run.stdout[-20000:] + run.stderr[-5000:],
        )
        if args.outage:
            own.start()
            result["recovered_after"] = _recovered(stack.url, stack.token, 30)
    finally:
        close_stack(stack)
        own.stop()
        for name in ("server", "worker"):
            log = folder / "stack" / f"{name}.log"
            text = log.read_text() if log.exists() else ""
            result[f"{name}_log"] = text[-20000:]
            if name == "server":  # what the last resort answered (and logged), if anything
                result["internal_errors"] = INTERNAL.findall(text)[:20]
        (folder / "result.json").write_bytes(orjson.dumps(result))


if __name__ == "__main__":
    main()
