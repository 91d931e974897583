"""What `fnhub serve` tells its console about tasks: failures as they end, a tally at stop.

Failed tasks show one line each, a few a second at most.

A thread reads the records stream (`keys.records`, outside the recorders' consumer group, from
its end at start-up) and prints every final failure (failure, timeout, dead) as
`time function status: ErrorType: message (task <id>)`. A burst prints at most `per_second`
lines a second and then one summary line with how many more it left out, so a function failing
in a loop cannot flood the console or slow the machine. Tasks run with `record=False` are not in
the stream, so they are not shown.

It also counts the outcomes workers report in `keys.stats` from start to stop, for the last line
`serve` prints (`Tally`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime

import msgspec
import redis

from fnhub.keys import Keys
from fnhub.redis_replies import as_entries, as_hash, as_streams
from fnhub.tasks import Status

SHOWN = frozenset({Status.FAILURE, Status.TIMEOUT, Status.DEAD})
FAILED = SHOWN | {Status.EXPIRED}
MESSAGE_CHARS = 200


class Outcome(msgspec.Struct):
    """The part of a `TaskResult` a console line needs (the rest is skipped when decoding)."""

    id: str
    function: str
    status: str
    error_type: str | None = None
    error_message: str | None = None
    end_time: float | None = None


_decoder = msgspec.msgpack.Decoder(list[Outcome])


def failure_line(outcome: Outcome) -> str:
    when = datetime.fromtimestamp(outcome.end_time or time.time()).strftime("%H:%M:%S")
    message = (outcome.error_message or "").strip().splitlines()
    text = message[0] if message else ""
    if len(text) > MESSAGE_CHARS:
        text = text[: MESSAGE_CHARS - 1] + "…"
    error = ": ".join(part for part in (outcome.error_type, text) if part) or "(no message)"
    return f"{when} {outcome.function} {outcome.status}: {error} (task {outcome.id})"


class FailureFeed:
    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        write: Callable[[str], None],
        per_second: int = 5,
    ) -> None:
        self.redis = client
        self.keys = keys
        self.write = write
        self.per_second = per_second
        self._window_start = time.monotonic()
        self._shown = 0
        self._left_out = 0
        self._last_id = "0-0"

    def start_at_end(self) -> None:
        """Show only what ends from now on (the stream keeps earlier runs' results)."""
        newest = as_entries(self.redis.xrevrange(self.keys.records, count=1))
        self._last_id = newest[0][0].decode() if newest else "0-0"

    def run(self, stop: threading.Event, block_ms: int = 300) -> None:
        """Print failures until `stop` is set, then what is already in the stream."""
        while not stop.is_set():
            try:
                self.read(block_ms)
            except (redis.RedisError, OSError):
                stop.wait(1.0)
        try:
            self.read(None)
        except (redis.RedisError, OSError):
            pass
        self._close_window()

    def read(self, block_ms: int | None) -> None:
        answer = self.redis.xread({self.keys.records: self._last_id}, count=200, block=block_ms)
        for _stream, entries in as_streams(answer):
            for entry_id, fields in entries:
                self._last_id = entry_id.decode()
                data = fields.get(b"rs")
                if data is None:
                    continue
                try:
                    outcomes = _decoder.decode(data)
                except msgspec.DecodeError:
                    continue
                for outcome in outcomes:
                    if outcome.status in SHOWN:
                        self.show(outcome)
        if time.monotonic() - self._window_start >= 1.0:
            self._close_window()

    def show(self, outcome: Outcome) -> None:
        if time.monotonic() - self._window_start >= 1.0:
            self._close_window()
        if self._shown < self.per_second:
            self.write(failure_line(outcome))
            self._shown += 1
        else:
            self._left_out += 1

    def _close_window(self) -> None:
        if self._left_out:
            n = self._left_out
            self.write(
                f"… {n} more failed task{'s' if n > 1 else ''} not shown "
                "(`fnhub tasks --status failure` lists them)"
            )
        self._window_start = time.monotonic()
        self._shown = 0
        self._left_out = 0


class Tally:
    """Tasks finished (and failed) between `start` and `summary`, from the workers' counters."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.redis = client
        self.keys = keys
        self._start: dict[str, int] = {}
        self._started = time.monotonic()

    def _counts(self) -> dict[str, int]:
        raw = as_hash(self.redis.hgetall(self.keys.stats))
        counts: dict[str, int] = {}
        for field, value in raw.items():
            kind, _, rest = field.decode().partition("|")
            if kind == "n":
                status = rest.rpartition("|")[2]
                counts[status] = counts.get(status, 0) + int(value)
        return counts

    def start(self) -> None:
        self._start = self._counts()
        self._started = time.monotonic()

    def summary(self) -> str:
        """The last line `serve` prints."""
        seconds = int(time.monotonic() - self._started)
        ran = f"after {seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
        try:
            now = self._counts()
        except (redis.RedisError, OSError):
            return f"fnhub stopped {ran}"
        diff = {s: n - self._start.get(s, 0) for s, n in now.items()}
        total = sum(diff.values())
        failed = sum(n for s, n in diff.items() if s in FAILED)
        return (
            f"fnhub stopped {ran}: {total} task{'s' if total != 1 else ''} finished, "
            f"{failed} failed"
        )
