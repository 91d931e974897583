"""Behind Sentinel, an async call answered 202 survives `SENTINEL FAILOVER`: the server waits
for a replica to have the task (`fnhub.redis_wait`), and refuses with a clear 503 a task the
old primary took after the replica's promotion (which its resync would drop).

Under load: three clients call at once through the failover, each sending a refused call again
until it is answered 202 (as a client that retries would; a refused call may run all the same),
and every call answered 202 runs (the function appends its number to a file: outside Redis, so
nothing a failover drops can hide a run) and has its record. With `enqueue_replicas` 0 (nothing
waited for) the same run loses calls: 28 of 529 in one."""

from __future__ import annotations

import collections
import contextlib
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from tests.conftest import wait_for
from tests.sentinel_redis import SentinelRedis

from .conftest import SCRIPT, close_stack, make_stack
from .test_sentinel import MARK

#: every other submission is delayed this long: it waits in the delayed set, so one the old
#: primary took after the promotion is still there (and dropped) when the clients move, however
#: fast the worker drains its queue
DELAY = 2.0
SENDERS = 3


@dataclass
class Submissions:
    """Async calls at a steady rate until `stop`, from `SENDERS` clients at once (`run` each,
    with its own `first` number), each sending a refused call again until it is acknowledged:
    which were acknowledged, which refused."""

    url: str
    token: str
    marks: Path
    stop: threading.Event = field(default_factory=threading.Event)
    acknowledged: dict[int, float] = field(default_factory=dict)  # n → when (monotonic)
    task_ids: dict[int, str] = field(default_factory=dict)  # n → its task's id
    refused: list[tuple[int, float, int, str, str]] = field(default_factory=list)
    no_answer: list[str] = field(default_factory=list)

    def run(self, first: int = 1) -> None:
        n = first - SENDERS
        with httpx.Client(base_url=self.url, timeout=10) as c:
            c.headers["Authorization"] = f"Bearer {self.token}"
            while not self.stop.is_set():
                n += SENDERS  # the senders' numbers never meet
                body: dict[str, object] = {"kwargs": {"path": str(self.marks), "n": n}}
                if n % 2:
                    body["delay"] = DELAY
                while not self.stop.is_set() and not self._sent(c, n, body):
                    time.sleep(0.05)  # refused: again (sooner than Retry-After, for the test)
                time.sleep(0.01)

    def _sent(self, c: httpx.Client, n: int, body: dict[str, object]) -> bool:
        """Whether call `n` was answered (acknowledged, or without an answer: not sent again)."""
        try:
            r = c.post("/api/v1/functions/demo.mark/tasks", json=body)
        except httpx.HTTPError as exc:
            self.no_answer.append(f"{n}: {exc!r}")
            return True
        if r.status_code == 202:
            self.acknowledged[n] = time.monotonic()
            self.task_ids[n] = r.json()["id"]
            return True
        error = r.json().get("error", {})
        code, message = error.get("code", ""), error.get("message", "")
        self.refused.append((n, time.monotonic(), r.status_code, code, message))
        return False


def _unrecorded(c: httpx.Client, task_ids: list[str]) -> list[str]:
    """Of `task_ids`, those without a successful record yet."""
    missing = []
    for task_id in task_ids:
        r = c.get(f"/api/v1/tasks/{task_id}/record")
        if r.status_code != 200 or r.json()["status"] != "success":
            missing.append(task_id)
    return missing


def test_async_calls_acknowledged_during_a_failover_all_run(tmp_path: Path) -> None:
    redis = SentinelRedis(tmp_path / "redis", replicas=1)
    redis.start()
    stack = None
    try:
        stack = make_stack(
            tmp_path / "stack",
            script=SCRIPT + MARK,
            redis_url=redis.url,
            # short: a refused call is answered soon and sent again, so the calls go on
            # through the second in which the old primary takes writes no replica follows
            enqueue_replicas_timeout="0.3",
        )
        load = Submissions(stack.url, stack.token, tmp_path / "marks.txt")
        threads = [threading.Thread(target=load.run, args=(i + 1,)) for i in range(SENDERS)]
        for thread in threads:
            thread.start()
        try:
            time.sleep(2)
            assert load.acknowledged, "no submission acknowledged before the failover"
            started = time.monotonic()
            _new, switch_seconds = redis.failover()
            time.sleep(3)
        finally:
            load.stop.set()
            for thread in threads:
                thread.join(30)

        def ran() -> collections.Counter[int]:
            text = load.marks.read_text() if load.marks.exists() else ""
            return collections.Counter(int(line) for line in text.split())

        def all_ran() -> bool:
            return set(load.acknowledged) <= set(ran())

        # the delayed ones come due DELAY seconds after the last; the assertion says what is not
        with contextlib.suppress(AssertionError):
            wait_for(all_ran, timeout=DELAY + 10, interval=0.5)
        lost = sorted(set(load.acknowledged) - set(ran()))
        around = [n for n in lost if started - 1 <= load.acknowledged[n]]
        print(
            f"Sentinels switched in {switch_seconds:.2f}s; {len(load.acknowledged)} "
            f"acknowledged, {len(load.refused)} refused, {len(lost)} acknowledged and lost "
            f"({len(around)} of them around the failover)"
        )
        assert not load.no_answer, f"submissions without an answer: {load.no_answer[:3]}"
        assert not lost, f"{len(lost)} tasks answered 202 never ran: {lost[:20]}"
        for n, _when, status, code, message in load.refused:  # a clear error, nothing silent
            assert status == 503, (n, status, code, message)
            assert code in ("not_replicated", "unavailable"), (n, code, message)
            assert message, n
        after = [n for n, when in load.acknowledged.items() if when > started + switch_seconds]
        assert after, "nothing acknowledged after the failover"
        # and each has its record (records land within about a second of a task's end)
        unrecorded = list(load.task_ids.values())
        deadline = time.monotonic() + 20
        with stack.admin() as c:
            while unrecorded and time.monotonic() < deadline:
                unrecorded = _unrecorded(c, unrecorded)
                time.sleep(0.2)
        assert not unrecorded, f"{len(unrecorded)} ran with no record: {unrecorded[:10]}"
    finally:
        if stack is not None:
            close_stack(stack)
        redis.close()
