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
    def __init__(self) -> None:
        self.source: SourceStatus | None = None
        self.processed = 0
        self.published = 0
        self.by_outcome: dict[str, int] = {}
        self.last: dict[str, dict[str, Any]] = {}
        self.last_error: str | None = None
        self._finished: deque[float] = deque()
        self.total_seconds = 0.0

    def outcome(self, msg: Message, status: str, result: Any, error: str | None) -> None:
        self.by_outcome[status] = self.by_outcome.get(status, 0) + 1
        entry: dict[str, Any] = {
            "at": time.time(),
            "topic": msg.topic,
            "message": _preview(msg.payload),
        }
        if error is not None:
            entry["error"] = error
        else:
            entry["result"] = result
        self.last[status] = entry

    def done(self, seconds: float) -> None:
        now = time.time()
        self.processed += 1
        self.total_seconds += seconds
        self._finished.append(now)
        while self._finished and self._finished[0] < now - RATE_WINDOW_SECONDS:
            self._finished.popleft()

    @property
    def rate_per_minute(self) -> int:
        now = time.time()
        while self._finished and self._finished[0] < now - RATE_WINDOW_SECONDS:
            self._finished.popleft()
        return len(self._finished)

    def snapshot(self) -> dict[str, Any]:
        source = asdict(self.source) if self.source is not None else {}
        return {
            "processed": self.processed,
            "published": self.published,
            "outcomes": self.by_outcome,
            "last": self.last,
            "rate_per_minute": self.rate_per_minute,
            "last_error": self.last_error or source.get("last_error"),
            "source": source,
        }
