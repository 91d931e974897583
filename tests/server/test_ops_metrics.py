"""`/metrics` beyond tasks: failures by kind per function and HTTP requests by route template,
after real traffic through a real server and worker."""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Iterator

import httpx
import pytest

from .conftest import Stack, close_stack, make_stack

#: a script whose functions fail in each way the platform names, and in user code
SCRIPT = """
import time
import fnhub


@fnhub.api("Fine")
def fine():
    return 1


@fnhub.api("Raises")
def raises():
    raise KeyError("user code")


@fnhub.api("Too slow", timeout=0.5)
def sleepy():
    time.sleep(5)


@fnhub.api("Unserialisable result")
def unserialisable():
    return object()


@fnhub.api("Longer than a cron tick")
def lingers():
    time.sleep(2.5)
"""

#: cron jobs every second: one quick, one whose runs overlap (skipped), one paused
CRON = """
cron_jobs:
  - {id: quick, function: demo.fine, expr: "* * * * * *"}
  - {id: overlapping, function: demo.lingers, expr: "* * * * * *"}
  - {id: held, function: demo.fine, expr: "* * * * * *"}
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("ops-metrics")
    (tmp / "fnhub.yaml").write_text(CRON)
    s = make_stack(tmp, script=SCRIPT, cron_misfire_grace_seconds="1")
    yield s
    close_stack(s)


def samples(text: str, name: str) -> dict[frozenset[tuple[str, str]], float]:
    """Every sample of `name`: its labels → value."""
    out = {}
    for line in text.splitlines():
        match = re.fullmatch(r"(\w+)(?:\{(.*)\})? (\S+)", line)
        if match and match[1] == name:
            out[frozenset(re.findall(r'(\w+)="([^"]*)"', match[2] or ""))] = float(match[3])
    return out


def sample(text: str, name: str, **labels: str) -> float:
    """The value of the one sample `name{labels}` (labels in any order)."""
    found = samples(text, name).get(frozenset(labels.items()))
    if found is None:
        raise AssertionError(f"no sample {name}{labels} in /metrics")
    return found


def scrape_until(c: httpx.Client, ready: object, seconds: float = 10) -> str:
    """/metrics once `ready(text)` holds (counts land within the servers' flush period)."""
    deadline = time.monotonic() + seconds
    while True:
        text = c.get("/metrics").text
        if ready(text) or time.monotonic() > deadline:  # type: ignore[operator]
            return text
        time.sleep(0.2)


def test_failures_by_kind(stack: Stack) -> None:
    with stack.admin() as c:
        for name, status in [
            ("fine", 200),
            ("raises", 500),
            ("raises", 500),
            ("sleepy", 504),
            ("unserialisable", 500),
        ]:
            r = c.post(f"/api/v1/functions/demo.{name}/call", json={"kwargs": {}})
            assert r.status_code == status, r.text
        text = c.get("/metrics").text
    failures = "fnhub_function_failures_total"
    assert sample(text, failures, function="demo.raises", kind="user") == 2
    assert sample(text, failures, function="demo.sleepy", kind="TimeoutError") == 1
    assert sample(text, failures, function="demo.unserialisable", kind="ResultNotSerializable") == 1
    assert not [k for k in samples(text, failures) if ("function", "demo.fine") in k]
    # the user's exception class never becomes a label
    assert "KeyError" not in "".join(line for line in text.splitlines() if failures in line)


def test_http_requests_by_route_template(stack: Stack) -> None:
    with stack.admin() as c:
        before = c.get("/metrics").text
        for n in range(3):
            assert c.get(f"/api/v1/tasks/no-such-task-{n}").status_code == 404
        assert c.get("/healthz").status_code == 200
        assert c.request("PURGE", "/healthz").status_code == 405
        route = "/api/v1/tasks/{task_id}"

        def landed(text: str) -> bool:
            found = samples(text, "fnhub_http_requests_total")
            tasks = frozenset({("route", route), ("method", "GET"), ("status", "4xx")})
            other = frozenset({("route", "/healthz"), ("method", "other"), ("status", "4xx")})
            return found.get(tasks, 0) >= 3 and other in found

        text = scrape_until(c, landed)
    requests = "fnhub_http_requests_total"
    assert sample(text, requests, route=route, method="GET", status="4xx") == 3
    assert sample(text, requests, route="/healthz", method="GET", status="2xx") >= 1
    assert sample(text, requests, route="/healthz", method="other", status="4xx") == 1
    # raw paths never become labels
    assert "no-such-task" not in text
    hist = "fnhub_http_request_seconds"
    assert sample(text, f"{hist}_count", route=route) == 3
    assert sample(text, f"{hist}_bucket", route=route, le="+Inf") == 3
    assert 0 < sample(text, f"{hist}_sum", route=route) < 30
    # moved since the first scrape
    old = samples(before, requests).get(
        frozenset({("route", "/metrics"), ("method", "GET"), ("status", "2xx")}), 0
    )
    assert sample(text, requests, route="/metrics", method="GET", status="2xx") > old


def test_cron_fired_skipped_and_delay(stack: Stack) -> None:
    with stack.admin() as c:
        assert c.post("/api/v1/cron-jobs/held/pause").status_code == 200

        def ticked(text: str) -> bool:
            fired = samples(text, "fnhub_cron_fired_total")
            skipped = samples(text, "fnhub_cron_skipped_total")
            return (
                fired.get(frozenset({("job", "quick")}), 0) >= 3
                and fired.get(frozenset({("job", "overlapping")}), 0) >= 1
                and frozenset({("job", "overlapping"), ("reason", "overlap")}) in skipped
                and frozenset({("job", "held"), ("reason", "paused")}) in skipped
            )

        first = scrape_until(c, ticked, 20)
        assert ticked(first), [x for x in first.splitlines() if "cron" in x]
        time.sleep(2.5)
        text = c.get("/metrics").text
    fired = sample(text, "fnhub_cron_fired_total", job="quick")
    assert fired > sample(first, "fnhub_cron_fired_total", job="quick")  # moving
    assert sample(text, "fnhub_cron_skipped_total", job="overlapping", reason="overlap") >= 1
    assert sample(text, "fnhub_cron_skipped_total", job="held", reason="paused") >= 2
    held = sample(first, "fnhub_cron_fired_total", job="held")  # it ran before the pause
    assert sample(text, "fnhub_cron_fired_total", job="held") == held
    # the delay of every fired tick: well under a second on an idle machine
    delay = "fnhub_cron_delay_seconds"
    assert sample(text, f"{delay}_count", job="quick") == fired
    assert sample(text, f"{delay}_bucket", job="quick", le="+Inf") == fired
    assert 0 <= sample(text, f"{delay}_sum", job="quick") < fired * 1.0


def test_cron_ticks_missed_while_the_beat_stalled(stack: Stack) -> None:
    """The server (and its beat) stopped for 3 s: the ticks it comes back to are later than
    the grace period (1 s here) and counted as missed; ticks fire again afterwards."""
    missed = frozenset({("job", "quick"), ("reason", "missed")})
    with stack.admin() as c:
        before = samples(c.get("/metrics").text, "fnhub_cron_skipped_total").get(missed, 0)
        stack.server.send_signal(signal.SIGSTOP)
        try:
            time.sleep(3)
        finally:
            stack.server.send_signal(signal.SIGCONT)
        fired = sample(c.get("/metrics").text, "fnhub_cron_fired_total", job="quick")

        def recovered(text: str) -> bool:
            return (
                samples(text, "fnhub_cron_skipped_total").get(missed, 0) > before
                and sample(text, "fnhub_cron_fired_total", job="quick") > fired + 1
            )

        text = scrape_until(c, recovered, 20)
    assert recovered(text), [x for x in text.splitlines() if "cron" in x and "quick" in x]


def test_route_template_of_included_and_unhashable_routes() -> None:
    """The full template of a route included under prefixes, found again from the cache; a
    route class without a hash (as a dataclass with eq) is fine too."""
    from starlette.routing import compile_path

    from fnhub.server.middleware import UNMATCHED, route_template

    class Route:
        __hash__ = None  # type: ignore[assignment]

        def __init__(self, path: str) -> None:
            self.path = path
            self.path_regex = compile_path(path)[0]

    route = Route("/tasks/{task_id}")
    for task in ("a", "b/c", "d"):
        scope = {"route": route, "path": f"/api/v1/tasks/{task}"}
        expected = "/api/v1/tasks/{task_id}" if "/" not in task else "/tasks/{task_id}"
        assert route_template(scope) == expected
    assert route_template({"path": "/nowhere"}) == UNMATCHED
    assert route_template({"route": Route("/"), "path": "/"}) == "/"
