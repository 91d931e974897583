"""Task records and dead letters through the admin API of a real server with real workers:
full records with every attempt, filtered keyset pages, and replaying or discarding dead letters.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from tests.conftest import wait_for

from fnhub.records import to_row, upsert_records
from fnhub.store.db import Database
from fnhub.tasks import TaskResult

from .conftest import RECORDS_SCRIPT, Stack, close_stack, make_stack

FIXME = """
import fnhub


@fnhub.api("Fails until fixed", dead_letter=True)
def fragile(x: int):
    raise RuntimeError(f"fragile {x}")
"""
FIXED = FIXME.replace('raise RuntimeError(f"fragile {x}")', "return x * 2")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = make_stack(tmp_path_factory.mktemp("records"))
    try:
        with s.admin() as c:
            for name, code in (("rec", RECORDS_SCRIPT), ("fixme", FIXME)):
                assert c.put(f"/api/v1/scripts/{name}", json={"code": code}).status_code == 200
        time.sleep(2.1)  # workers re-read the active scripts at most every 2 s
        yield s
    finally:
        close_stack(s)


def _failed_call(c: httpx.Client, ref: str, kwargs: dict) -> str:
    """Call a function that fails; its task id."""
    r = c.post(f"/api/v1/functions/{ref}/call", json={"kwargs": kwargs})
    assert r.status_code in (500, 504), r.text
    return r.json()["error"]["task_id"]


def _final_record(c: httpx.Client, task_id: str) -> dict:
    def final() -> dict | None:
        r = c.get(f"/api/v1/tasks/{task_id}/record")
        if r.status_code == 200 and r.json()["status"] not in ("queued", "running", "retrying"):
            return r.json()
        return None

    return wait_for(final, timeout=15, interval=0.1)


def test_record_of_a_retried_failure_has_kwargs_and_both_attempts(stack: Stack) -> None:
    with stack.admin() as c:
        task_id = _failed_call(c, "rec.flaky", {"order": "A-7"})
        record = _final_record(c, task_id)
        assert (record["status"], record["attempt"]) == ("failure", 2)
        assert record["kwargs"] == {"order": "A-7"}
        assert "raise ValueError" in record["traceback"]
        first, second = record["attempts"]
        assert (first["attempt"], first["status"]) == (1, "retrying")
        assert first["error_message"] == "order A-7 broke on attempt 1"
        assert "attempt 1 for A-7" in first["logs"] and "ValueError" in first["traceback"]
        assert (second["attempt"], second["status"]) == (2, "failure")
        assert "attempt 2 for A-7" in second["logs"]
        assert first["start_time"] < second["start_time"]
        page = c.get("/api/v1/tasks", params={"function": "rec.flaky"}).json()
        (item,) = [i for i in page["items"] if i["id"] == task_id]
        assert item["status"] == "failure" and item["attempt"] == 2
        assert not {"kwargs", "logs", "result", "traceback"} & item.keys()
        # without dead_letter=True, a failure is no dead letter
        assert c.get(f"/api/v1/dead-letters/{task_id}").status_code == 404
        missing = c.get("/api/v1/tasks/0000nosuchtask/record")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "unknown_task"


def test_a_dead_letter_replayed_after_a_fix_runs_again_and_is_recorded(stack: Stack) -> None:
    with stack.admin() as c:
        dead_id = _failed_call(c, "fixme.fragile", {"x": 21})
        letter = c.get(f"/api/v1/dead-letters/{dead_id}").json()
        assert (letter["task_id"], letter["function"]) == (dead_id, "fixme.fragile")
        assert letter["kwargs"] == {"x": 21} and letter["attempt"] == 1
        assert letter["reason"] == "failure: RuntimeError: fragile 21"
        listed = c.get("/api/v1/dead-letters", params={"function": "fixme.fragile"}).json()
        assert [x["task_id"] for x in listed["items"]] == [dead_id]
        assert c.get(f"/api/v1/dead-letters/{letter['id']}").json()["task_id"] == dead_id
        assert c.put("/api/v1/scripts/fixme", json={"code": FIXED}).status_code == 200
        r = c.post(f"/api/v1/dead-letters/{dead_id}/replay")
        assert r.status_code == 200, r.text
        (new_id,) = r.json()["task_ids"]
        assert r.json()["replayed"] == 1 and new_id != dead_id
        done = c.get(f"/api/v1/tasks/{new_id}", params={"wait": 10}).json()
        assert (done["status"], done["result"], done["attempt"]) == ("success", 42, 1)
        record = _final_record(c, new_id)
        assert record["replay_of"] == dead_id and record["kwargs"] == {"x": 21}
        assert _final_record(c, dead_id)["status"] == "failure"  # the dead task's own record
        gone = c.get(f"/api/v1/dead-letters/{dead_id}")
        assert gone.status_code == 404 and gone.json()["error"]["code"] == "unknown_dead_letter"
        assert c.post(f"/api/v1/dead-letters/{dead_id}/replay").status_code == 404


def test_a_timeout_goes_to_the_dead_letters_with_the_option(stack: Stack) -> None:
    with stack.admin() as c:
        task_id = _failed_call(c, "rec.sleepy", {})
        letter = wait_for(lambda: c.get(f"/api/v1/dead-letters/{task_id}").json().get("reason"))
        assert letter.startswith("timeout: TimeoutError: rec.sleepy ran longer")
        assert _final_record(c, task_id)["status"] == "timeout"


def test_replay_and_discard_with_a_filter(stack: Stack) -> None:
    with stack.admin() as c:
        brittle = [_failed_call(c, "rec.brittle", {"x": i}) for i in range(3)]
        cracked = _failed_call(c, "rec.cracked", {"x": 9})
        for body in ({}, {"all": False}):
            refused = c.post("/api/v1/dead-letters/replay", json=body)
            assert refused.status_code == 422
            assert refused.json()["error"]["code"] == "empty_filter"
        assert c.post("/api/v1/dead-letters/replay", json={"nope": 1}).status_code == 422
        by_text = c.get("/api/v1/dead-letters", params={"q": "keyerror"}).json()["items"]
        assert sorted(x["task_id"] for x in by_text) == sorted(brittle)
        count = c.get("/api/v1/dead-letters/count", params={"q": "keyerror"})
        assert count.json() == {"count": 3}, count.text
        assert c.get("/api/v1/dead-letters/count", params={"function": "rec.cracked"}).json() == {
            "count": 1
        }
        assert c.get("/api/v1/dead-letters/count", params={"q": ""}).status_code == 422
        r = c.post("/api/v1/dead-letters/replay", json={"function": "rec.brittle"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["replayed"] == 3 and body["skipped"] == [] and len(set(body["task_ids"])) == 3
        for new_id in body["task_ids"]:  # each ran again (and failed again: KeyError)
            record = _final_record(c, new_id)
            assert record["status"] == "failure" and record["replay_of"] in brittle
        for old in brittle:
            assert c.get(f"/api/v1/dead-letters/{old}").status_code == 404
        assert c.get(f"/api/v1/dead-letters/{cracked}").status_code == 200  # not matched
        again = c.get("/api/v1/dead-letters", params={"function": "rec.brittle"}).json()
        assert sorted(x["task_id"] for x in again["items"]) == sorted(body["task_ids"])
        assert c.delete(f"/api/v1/dead-letters/{cracked}").json() == {"deleted": True}
        assert c.delete(f"/api/v1/dead-letters/{cracked}").status_code == 404
        r = c.post("/api/v1/dead-letters/discard", json={"function": "rec.brittle"})
        assert r.json() == {"discarded": 3, "skipped": []}
        assert c.get("/api/v1/dead-letters", params={"function": "rec.brittle"}).json() == {
            "items": [],
            "next_cursor": None,
        }


BASE = 1_000_000.0  # far before any real task, so these rows are the only ones in range


def _seed(stack: Stack, n: int) -> list[dict]:
    """n records written as a recorder writes them: trigger times in threes (ties), two
    functions, three statuses, two origins, and error messages with LIKE wildcards in them."""
    messages = ["Disk 50% FULL", "disk 500 full", "all_good", "allXgood"]
    rows = []
    for i in range(n):
        status = ("success", "failure", "timeout")[i % 3]
        rows.append(
            {
                "id": f"{i:06d}seed{i * 7919 % 1000:04d}",
                "function": "page.a" if i % 2 else "page.b",
                "status": status,
                "origin": "cron" if i % 5 == 0 else "direct",
                "origin_id": f"job{i % 4}" if i % 5 == 0 else "page",
                "trigger_time": BASE + i // 3,
                "error_type": None if status == "success" else "OSError",
                "error_message": None if status == "success" else messages[i % 4],
            }
        )
    db = Database(stack.env["FNHUB_DB_URL"])
    try:
        upsert_records(db, [to_row(TaskResult(**row)) for row in rows])
    finally:
        db.dispose()
    return rows


def _newest_first(rows: list[dict]) -> list[str]:
    ordered = sorted(rows, key=lambda r: (r["trigger_time"], r["id"]), reverse=True)
    return [r["id"] for r in ordered]


def _walk(c: httpx.Client, params: dict, limit: int) -> tuple[list[str], int | None]:
    ids: list[str] = []
    cursor = None
    total = None
    while True:
        query = {**params, "limit": limit, **({"cursor": cursor} if cursor else {})}
        r = c.get("/api/v1/tasks", params=query)
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["items"]) <= limit
        if cursor is None:
            total = page["total"]
        else:
            assert page["total"] is None  # counted on the first page only
        ids += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return ids, total


def test_filters_and_keyset_pages_over_hundreds_of_records(stack: Stack) -> None:
    rows = _seed(stack, 300)
    span = {"since": BASE, "until": BASE + 1000}
    with stack.admin() as c:
        ids, total = _walk(c, span, limit=7)
        assert total == 300
        assert ids == _newest_first(rows)  # each row once, newest first, ties by id
        cases = [
            ({"function": "page.a"}, lambda r: r["function"] == "page.a"),
            ({"status": "failure"}, lambda r: r["status"] == "failure"),
            ({"origin": "cron"}, lambda r: r["origin"] == "cron"),
            ({"origin": "cron", "origin_id": "job2"}, lambda r: r["origin_id"] == "job2"),
            (
                {"function": "page.b", "status": "timeout", "origin": "direct"},
                lambda r: (
                    r["function"] == "page.b"
                    and r["status"] == "timeout"
                    and r["origin"] == "direct"
                ),
            ),
            ({"q": "50% full"}, lambda r: r["error_message"] == "Disk 50% FULL"),
            ({"q": "all_good"}, lambda r: r["error_message"] == "all_good"),
            ({"q": "oserr"}, lambda r: r["error_type"] == "OSError"),
            (
                {"since": BASE + 10, "until": BASE + 20},
                lambda r: BASE + 10 <= r["trigger_time"] < BASE + 20,
            ),
        ]
        for params, keep in cases:
            wanted = _newest_first([r for r in rows if keep(r)])
            assert wanted, params
            got, total = _walk(c, {**span, **params}, limit=11)
            assert (got, total) == (wanted, len(wanted)), params
        # offset paging still works beside the cursor
        page = c.get("/api/v1/tasks", params={**span, "limit": 5, "offset": 5}).json()
        assert [i["id"] for i in page["items"]] == _newest_first(rows)[5:10]
        uncounted = c.get("/api/v1/tasks", params={**span, "limit": 5, "count": False}).json()
        assert uncounted["total"] is None and len(uncounted["items"]) == 5
        bad = c.get("/api/v1/tasks", params={"cursor": "not-a-cursor"})
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_cursor"
        assert c.get("/api/v1/tasks", params={"limit": 501}).status_code == 422
        assert c.get("/api/v1/tasks", params={"status": "nope"}).status_code == 422


def test_dead_letters_before_the_first_millisecond_are_none(stack: Stack) -> None:
    """`until` under 1 ms of the epoch once made an invalid stream bound ("(0-0") and a 500."""
    with stack.admin() as c:
        _failed_call(c, "rec.brittle", {"x": 1})
        for until in (1.1754943508222875e-38, 0, 0.0009):
            r = c.get("/api/v1/dead-letters", params={"until": until})
            assert r.status_code == 200, r.text
            assert r.json()["items"] == []


def test_routes_are_in_the_openapi_document(stack: Stack) -> None:
    with stack.client() as c:
        paths = c.get("/openapi.json").json()["paths"]
    for path in (
        "/api/v1/tasks",
        "/api/v1/tasks/{task_id}/record",
        "/api/v1/dead-letters",
        "/api/v1/dead-letters/{letter_id}",
        "/api/v1/dead-letters/{letter_id}/replay",
        "/api/v1/dead-letters/replay",
        "/api/v1/dead-letters/discard",
    ):
        assert path in paths, path
