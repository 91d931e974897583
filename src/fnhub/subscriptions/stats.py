"""What a subscription shows about itself: counts, rate, last message per outcome, errors."""

from __future__ import annotations

import base64
import time
from collections import deque
from dataclasses import asdict
from typing import Any

from fnhub.connectors import Message, SourceStatus

PREVIEW_BYTES = 2000
RATE_WINDOW_SECONDS = 60
#: outcomes of a handled message counted as failed in `/metrics`
FAILED_OUTCOMES = frozenset({"failure", "timeout", "expired", "dead"})
#: the source's counters summed over every source a runner had (one per lease held)
_SOURCE_COUNTERS = ("received", "dropped", "failed")


def _preview(payload: bytes) -> dict[str, Any]:
    head = payload[:PREVIEW_BYTES]
    try:
        return {"text": head.decode(), "truncated": len(payload) > PREVIEW_BYTES}
    except UnicodeDecodeError:
        return {
            "base64": base64.b64encode(head).decode(),
            "truncated": len(payload) > PREVIEW_BYTES,
        }


class SubscriptionStats:
    """Counters kept per message at a cost of a few dict operations: the last message of each
    outcome is kept as it came and turned into a preview only when someone asks (`snapshot`),
    and the rate counts finished messages per second over the last minute."""

    def __init__(self) -> None:
        self._source: SourceStatus | None = None
        self._earlier_sources = dict.fromkeys(_SOURCE_COUNTERS, 0)
        self.processed = 0
        self.published = 0
        self.by_outcome: dict[str, int] = {}
        self.last_error: str | None = None
        self.total_seconds = 0.0
        self._last: dict[str, tuple[float, Message, Any, str | None, str | None]] = {}
        self._per_second: deque[list[int]] = deque()  # [epoch second, messages finished]

    @property
    def source(self) -> SourceStatus | None:
        return self._source

    @source.setter
    def source(self, status: SourceStatus | None) -> None:
        """A new source (a lease taken again): what the old one counted stays counted."""
        old = self._source
        if old is not None and old is not status:
            for name in _SOURCE_COUNTERS:
                self._earlier_sources[name] += getattr(old, name)
        self._source = status

    def counters(self) -> dict[str, int]:
        """Totals since this runner started, for `/metrics` (`subscriptions.metrics`):
        messages received from the broker, handled (settled, whatever the outcome), failed
        (handled with a failed outcome, or whose handler raised and left them unacked) and
        dropped (buffers that cannot push back)."""
        source = self._source
        totals = {
            name: self._earlier_sources[name] + (getattr(source, name) if source else 0)
            for name in _SOURCE_COUNTERS
        }
        failed_outcomes = sum(n for s, n in self.by_outcome.items() if s in FAILED_OUTCOMES)
        return {
            "received": totals["received"],
            "handled": self.processed,
            "failed": failed_outcomes + totals["failed"],
            "dropped": totals["dropped"],
        }

    def outcome(
        self,
        msg: Message,
        status: str,
        result: Any,
        error: str | None,
        task_id: str | None = None,
        n: int = 1,
    ) -> None:
        """Count one message's outcome (or `n` of them, `msg` the last); `task_id` names the
        task whose record tells more."""
        self.by_outcome[status] = self.by_outcome.get(status, 0) + n
        self._last[status] = (time.time(), msg, result, error, task_id)

    def done(self, seconds: float, n: int = 1) -> None:
        """`n` messages finished now, `seconds` their time from receipt to end summed (a
        batch counts once: the direct path settles hundreds at a time)."""
        self.processed += n
        self.total_seconds += seconds
        second = int(time.time())
        if self._per_second and self._per_second[-1][0] == second:
            self._per_second[-1][1] += n
        else:
            self._per_second.append([second, n])
            self._forget_old(second)

    def _forget_old(self, now: int) -> None:
        while self._per_second and self._per_second[0][0] <= now - RATE_WINDOW_SECONDS:
            self._per_second.popleft()

    @property
    def rate_per_minute(self) -> int:
        self._forget_old(int(time.time()))
        return sum(count for _second, count in self._per_second)

    @property
    def last(self) -> dict[str, dict[str, Any]]:
        """The last message per outcome, with its result or error and (when it has a record)
        the id of the task it ran."""
        view: dict[str, dict[str, Any]] = {}
        for status, (at, msg, result, error, task_id) in self._last.items():
            entry: dict[str, Any] = {"at": at, "topic": msg.topic, "message": _preview(msg.payload)}
            if task_id is not None:
                entry["task_id"] = task_id
            if error is not None:
                entry["error"] = error
            else:
                entry["result"] = result
            view[str(status)] = entry  # a `Status` member: JSON keys must be plain str
        return view

    def snapshot(self) -> dict[str, Any]:
        source = asdict(self.source) if self.source is not None else {}
        return {
            "processed": self.processed,
            "published": self.published,
            # outcomes decided here (refused, expired) are `Status` members, whose str() is
            # their value: keys must be plain str for the JSON snapshot
            "outcomes": {str(status): n for status, n in self.by_outcome.items()},
            "last": self.last,
            "rate_per_minute": self.rate_per_minute,
            "last_error": self.last_error or source.get("last_error"),
            "source": source,
        }
