"""What `fnhub serve` shows on its console: a line per failed task (rate-limited under a burst),
a last line when it stops, and with `--reload` what publishing a changed script did."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import httpx
import redis
from tests.conftest import wait_for
from tests.project_cli import (
    embedded_env,
    log_lines,
    poll_http,
    start_serve,
    stop,
    url,
    wait_for_log,
    wait_ready,
)

from fnhub.calling.errors import CallError
from fnhub.calling.queue_client import QueueClient
from fnhub.config import load_settings
from fnhub.keys import Keys
from fnhub.queue import results_entry
from fnhub.serve_console import FailureFeed
from fnhub.tasks import TaskResult, encode

FAILING = """
import fnhub


@fnhub.api("Fails")
def fail(n: int):
    raise ValueError(f"broken {n}\\nsecond line not shown")


@fnhub.api("Works")
def ok():
    return 1
"""

LINE = re.compile(
    r"^\d\d:\d\d:\d\d shop\.fail failure: ValueError: broken (\d+) \(task [0-9a-f]{24}\)$"
)
MORE = re.compile(r"^… (\d+) more failed tasks? not shown")
LAST = re.compile(r"^fnhub stopped after \d+:\d\d:\d\d: (\d+) tasks? finished, (\d+) failed$")


def _result(i: int, status: str) -> bytes:
    return encode(
        TaskResult(
            id=f"{i:024x}",
            function="shop.fail",
            status=status,
            error_type="ValueError",
            error_message=f"broken {i}",
            end_time=time.time(),
        )
    )


def test_failure_feed_shows_five_a_second_and_counts_the_rest(settings):
    client = redis.Redis.from_url(settings.redis_url)
    keys = Keys(settings.key_prefix)
    client.xadd(keys.records, results_entry([_result(999, "failure")]))  # before: not shown
    lines: list[str] = []
    feed = FailureFeed(client, keys, lines.append)
    feed.start_at_end()
    shown = [_result(0, "success"), _result(1, "retrying"), _result(2, "expired")]
    client.xadd(keys.records, results_entry(shown))
    client.xadd(keys.records, results_entry([_result(i, "failure") for i in range(100, 200)]))
    client.xadd(keys.records, results_entry([_result(7, "timeout")]))
    stop = threading.Event()
    stop.set()  # read what is there, then close the window
    feed.run(stop)
    client.close()
    assert len(lines) == 6, lines
    assert [int(re.search(r"broken (\d+)", x).group(1)) for x in lines[:5]] == [
        100,
        101,
        102,
        103,
        104,
    ]
    assert all(
        re.match(r"^\d\d:\d\d:\d\d shop\.fail failure: ValueError: broken", x) for x in lines[:5]
    )
    assert (
        lines[5] == "… 96 more failed tasks not shown (`fnhub tasks --status failure` lists them)"
    )


def _project(root: Path) -> Path:
    (root / "scripts").mkdir(parents=True)
    (root / "scripts" / "shop.py").write_text(FAILING)
    return root


def test_serve_prints_failed_tasks_rate_limited_and_a_last_line(tmp_path):
    project = _project(tmp_path / "proj")
    env = embedded_env()
    serve = start_serve(project, env)
    try:
        wait_ready(serve, env)
        client = QueueClient(load_settings(project))
        client.submit("shop.fail", {"n": 0})
        [line] = wait_for_log(project, "broken 0")
        assert LINE.match(line), line
        ids = [client.submit("shop.fail", {"n": i}).id for i in range(1, 101)]
        assert len(set(ids)) == 100

        def accounted() -> bool:
            lines = log_lines(project)
            shown = sum(1 for x in lines if (m := LINE.match(x)) and m.group(1) != "0")
            more = sum(int(m.group(1)) for x in lines if (m := MORE.match(x)))
            return shown + more == 100

        wait_for(accounted, timeout=60, interval=0.2)
        lines = log_lines(project)
        shown = [x for x in lines if (m := LINE.match(x)) and m.group(1) != "0"]
        summaries = [x for x in lines if MORE.match(x)]
        assert summaries, "a burst of 100 failures must be summarised"
        # at most five lines a second: five per window, each closed window summarised
        assert len(shown) <= 5 * (len(summaries) + 1)
        assert not any("second line not shown" in x for x in lines)
        assert client.call("shop.ok").result == 1
        client.close()
    finally:
        stop(serve)
    assert serve.returncode == 0
    lines = log_lines(project)
    stops = [i for i, x in enumerate(lines) if LAST.match(x)]
    assert len(stops) == 1, lines[-5:]
    match = LAST.match(lines[stops[0]])
    assert match and (int(match.group(1)), int(match.group(2))) == (102, 101)
    # then the run says where the console is and how to sign in
    hints = [x for x in lines[stops[0] + 1 :] if x.startswith("web console (while `fnhub serve`")]
    assert hints and "http://127.0.0.1:" in hints[0] and "sign in" in hints[0], lines[-5:]


GREET = """
import fnhub


@fnhub.api("Greet")
def greet(name: str = "world"):
    return {{"message": "hello {version}, " + name}}
"""


def test_serve_reload_publishes_a_changed_script_and_shows_a_broken_one(tmp_path):
    project = tmp_path / "proj"
    (project / "scripts").mkdir(parents=True)
    (project / "scripts" / "hello.py").write_text(GREET.format(version="v1"))
    (project / "fnhub.yaml").write_text("endpoints:\n  hi: {function: hello.greet}\n")
    env = embedded_env()
    serve = start_serve(project, env, "--reload")
    try:
        wait_ready(serve, env)
        assert httpx.get(f"{url(env)}/e/hi").json() == {"message": "hello v1, world"}

        (project / "scripts" / "hello.py").write_text(GREET.format(version="v2"))
        took, _ = poll_http("/e/hi", env, "hello v2", timeout=10)
        assert took < 3.0, f"the new version answered after {took:.2f} s"
        [published] = wait_for_log(project, "reload: hello v2 published")
        assert re.search(r"published in [\d.]+ s: greet$", published)

        (project / "scripts" / "hello.py").write_text("def greet(:\n")
        [error] = wait_for_log(project, "reload: not published")
        assert "hello: syntax error at line 1" in error
        for _ in range(5):  # the previous version stays active
            assert httpx.get(f"{url(env)}/e/hi").json() == {"message": "hello v2, world"}
            time.sleep(0.2)

        # fixed, it is published again (while one file is broken, none is: they may import
        # each other, so they are published together)
        (project / "scripts" / "hello.py").write_text(GREET.format(version="v3"))
        poll_http("/e/hi", env, "hello v3", timeout=10)

        client = QueueClient(load_settings(project))
        (project / "scripts" / "extra.py").write_text(
            "import fnhub\n\n@fnhub.api('Ping')\ndef ping():\n    return 'pong'\n"
        )
        wait_for_log(project, "reload: extra v1 published")
        assert client.call("extra.ping").result == "pong"
        (project / "scripts" / "extra.py").unlink()
        wait_for_log(project, "reload: extra removed")
        try:
            client.call("extra.ping")
            raise AssertionError("a removed script must not answer")
        except CallError as exc:
            assert exc.kind == "unknown_function"
        client.close()
    finally:
        stop(serve)
    assert serve.returncode == 0


def test_serve_with_a_broken_script_says_so_in_one_line_and_exits(tmp_path):
    project = tmp_path / "proj"
    (project / "scripts").mkdir(parents=True)
    (project / "scripts" / "broken.py").write_text("def oops(:\n")
    serve = start_serve(project, embedded_env())
    try:
        serve.wait(60)
    finally:
        stop(serve)
    text = "\n".join(log_lines(project))
    assert serve.returncode == 1, text
    assert "error: broken: syntax error at line 1" in text
    assert "Traceback" not in text
    assert log_lines(project)[-1] == "fnhub stopped"
