"""`fnhub tasks ...` run as a real subprocess against a real stack (Redis, SQLite, workers):
records listed, shown and followed; dead letters listed, replayed and discarded."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest
from tests.conftest import wait_for

from .conftest import RECORDS_SCRIPT, Stack, close_stack, make_stack

WIDTH = 80


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = make_stack(tmp_path_factory.mktemp("tasks-cli"))
    try:
        with s.admin() as c:
            assert c.put("/api/v1/scripts/rec", json={"code": RECORDS_SCRIPT}).status_code == 200
        time.sleep(2.1)  # workers re-read the active scripts at most every 2 s
        yield s
    finally:
        close_stack(s)


def _command(stack: Stack, *args: str) -> list[str]:
    return [sys.executable, "-c", "from fnhub.cli import main; main()", *args, "-p", str(stack.dir)]


def fnhub(stack: Stack, *args: str, code: int = 0) -> str:
    """Run `fnhub ARGS -p <project>` piped, at 80 columns; its stdout."""
    env = {**stack.env, "COLUMNS": str(WIDTH)}
    done = subprocess.run(
        _command(stack, *args), env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == code, (done.stdout, done.stderr)
    return done.stdout


def fnhub_json(stack: Stack, *args: str) -> dict:
    return json.loads(fnhub(stack, *args, "--json"))


def _failed_call(stack: Stack, ref: str, kwargs: dict) -> str:
    with stack.admin() as c:
        r = c.post(f"/api/v1/functions/{ref}/call", json={"kwargs": kwargs})
    assert r.status_code == 500, r.text
    return r.json()["error"]["task_id"]


def _landed(stack: Stack, task_id: str) -> None:
    """Wait until the task's final record is written (records land in batches)."""

    def final() -> bool:
        with stack.admin() as c:
            r = c.get(f"/api/v1/tasks/{task_id}/record")
        return r.status_code == 200 and r.json()["status"] not in ("retrying", "running")

    wait_for(final, timeout=15, interval=0.1)


def _readable(text: str) -> None:
    """Nothing cut, nothing empty shown as None, nothing wider than the terminal."""
    assert "…" not in text and "None" not in text
    assert all(len(line) <= WIDTH for line in text.splitlines()), text


def test_show_a_failed_task_with_its_kwargs_and_both_attempts(stack: Stack) -> None:
    task_id = _failed_call(stack, "rec.flaky", {"order": "B-2"})
    _landed(stack, task_id)
    text = fnhub(stack, "tasks", "show", task_id)
    _readable(text)
    assert task_id in text and "rec.flaky" in text
    assert '"order": "B-2"' in text
    assert "attempt 1 for B-2" in text and "attempt 2 for B-2" in text
    assert "retrying" in text and "failure" in text
    assert "order B-2 broke on attempt 1" in text and "order B-2 broke on attempt 2" in text
    assert text.count("Traceback (most recent call last)") == 2
    record = fnhub_json(stack, "tasks", "show", task_id)
    assert record["kwargs"] == {"order": "B-2"} and record["status"] == "failure"
    assert [(a["attempt"], a["status"]) for a in record["attempts"]] == [
        (1, "retrying"),
        (2, "failure"),
    ]
    assert "attempt 2 for B-2" in record["logs"] and record["wait_ms"] >= 0
    missing = subprocess.run(
        _command(stack, "tasks", "show", "nosuchtask"), env=stack.env, capture_output=True
    )
    assert missing.returncode == 1 and b"no record of task 'nosuchtask'" in missing.stderr


def test_list_with_filters_as_a_table_and_as_json(stack: Stack) -> None:
    failed = _failed_call(stack, "rec.flaky", {"order": "C-3"})
    with stack.admin() as c:
        ok = c.post("/api/v1/functions/demo.echo/call", json={"kwargs": {"v": None}}).json()
    _landed(stack, failed)
    _landed(stack, ok["id"])
    text = fnhub(stack, "tasks", "--since", "10m")
    _readable(text)
    assert failed in text and ok["id"] in text  # whole ids, on one line each
    assert "ValueError:" in text  # the error column, wrapped to fit
    page = fnhub_json(stack, "tasks", "--function", "rec.flaky", "--status", "failure")
    assert failed in [i["id"] for i in page["items"]]
    assert all(i["function"] == "rec.flaky" for i in page["items"])
    assert all("kwargs" not in i for i in page["items"])
    by_origin = fnhub_json(stack, "tasks", "--origin", "api", "--limit", "1", "--since", "1h")
    assert len(by_origin["items"]) == 1 and by_origin["next_cursor"]
    rest = fnhub_json(stack, "tasks", "--origin", "api", "--cursor", by_origin["next_cursor"])
    assert by_origin["items"][0]["id"] not in {i["id"] for i in rest["items"]}
    iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(time.time() + 3600))
    assert fnhub_json(stack, "tasks", "--since", iso)["items"] == []
    assert fnhub_json(stack, "tasks", "--status", "timeout", "--function", "demo.echo") == {
        "items": [],
        "next_cursor": None,
    }
    fnhub(stack, "tasks", "--status", "bogus", code=2)
    fnhub(stack, "tasks", "--since", "yesterday-ish", code=2)


def test_dead_letters_listed_replayed_and_discarded(stack: Stack) -> None:
    brittle = [_failed_call(stack, "rec.brittle", {"x": i}) for i in range(2)]
    cracked = [_failed_call(stack, "rec.cracked", {"x": i}) for i in range(3)]
    text = fnhub(stack, "tasks", "dead")
    _readable(text)
    assert all(task_id in text for task_id in brittle + cracked)
    listed = fnhub_json(stack, "tasks", "dead", "--function", "rec.cracked")
    assert sorted(x["task_id"] for x in listed["items"]) == sorted(cracked)
    # one replayed by id: a new task that runs (fails again) and is recorded with replay_of
    out = fnhub(stack, "tasks", "replay", brittle[0])
    new_id = out.split("new task ")[1].split()[0]
    _landed(stack, new_id)
    record = fnhub_json(stack, "tasks", "show", new_id)
    assert record["replay_of"] == brittle[0] and record["kwargs"] == {"x": 0}
    assert "replay of" in fnhub(stack, "tasks", "show", new_id)
    # every one of a function
    done = fnhub_json(stack, "tasks", "replay", "--all", "--function", "rec.cracked")
    assert done["replayed"] == 3 and done["skipped"] == []
    for task_id in done["task_ids"]:
        _landed(stack, task_id)
    left = {x["task_id"] for x in fnhub_json(stack, "tasks", "dead", "--limit", "500")["items"]}
    assert not left & set(cracked) and brittle[1] in left
    assert set(done["task_ids"]) <= left  # they failed again, so they are dead letters again
    # discard one, then the rest
    assert "discarded 1" in fnhub(stack, "tasks", "discard", brittle[1])
    fnhub(stack, "tasks", "discard", brittle[1], code=1)  # already gone
    fnhub(stack, "tasks", "replay", code=2)  # neither an id nor --all
    everything = fnhub_json(stack, "tasks", "discard", "--all")
    assert everything["discarded"] == len(left) - 1
    assert fnhub_json(stack, "tasks", "dead") == {"items": [], "next_cursor": None}


def _lines(stream) -> queue.Queue[str]:  # type: ignore[no-untyped-def]
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in stream:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return lines


def _until(lines: queue.Queue[str], needle: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=max(deadline - time.monotonic(), 0.01))
        except queue.Empty:
            break
        if needle in line:
            return line
    raise AssertionError(f"{needle!r} not printed within {timeout}s")


@pytest.mark.parametrize(
    ("as_json", "stop_signal"), [(False, signal.SIGINT), (True, signal.SIGTERM)]
)
def test_follow_prints_a_record_that_lands_while_it_runs(
    stack: Stack, as_json: bool, stop_signal: signal.Signals
) -> None:
    args = ["tasks", "--follow", "--function", "demo.add", *(["--json"] if as_json else [])]
    follow = subprocess.Popen(
        _command(stack, *args),
        env={**stack.env, "COLUMNS": str(WIDTH)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # as `fnhub tasks --follow &` in a script starts it: Ctrl-C must still stop it
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    try:
        _until(_lines(follow.stderr), "following task records", timeout=30)
        with stack.admin() as c:
            other = c.post("/api/v1/functions/demo.echo/call", json={"kwargs": {}}).json()
            call = c.post("/api/v1/functions/demo.add/call", json={"kwargs": {"a": 2, "b": 5}})
        task_id = call.json()["id"]
        line = _until(_lines(follow.stdout), task_id, timeout=15)
        if as_json:
            row = json.loads(line)
            assert (row["id"], row["status"], row["function"]) == (task_id, "success", "demo.add")
        else:
            assert "demo.add" in line and "success" in line and "None" not in line
        follow.send_signal(stop_signal)
        rest, _ = follow.communicate(timeout=15)
        assert follow.returncode == 0
        assert other["id"] not in rest  # filtered out
    finally:
        if follow.poll() is None:
            follow.kill()
            follow.wait()


def test_the_listing_matches_the_api(stack: Stack) -> None:
    with stack.admin() as c:
        api = c.get("/api/v1/tasks", params={"limit": 5, "count": False}).json()
    cli = fnhub_json(stack, "tasks", "--limit", "5")
    assert [i["id"] for i in cli["items"]] == [i["id"] for i in api["items"]]
    assert cli["next_cursor"] == api["next_cursor"]
