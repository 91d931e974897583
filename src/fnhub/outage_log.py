"""One log line per outage, not one per retry.

A loop that retries Redis every few milliseconds (the worker supervisor's chores) wrote a line
per try while Redis was away: ~16 lines of ~3 KB a second in bench/cluster.py's cut-off worker,
since redis-py's "No master found" text carries the whole connection pool. `OutageLog` writes
the first failure, a reminder every `every` seconds with how many tries failed since, and the
recovery with how long it lasted; `short_reason` keeps the reason to its first clause.
"""

from __future__ import annotations

import logging
import time

#: redis-py appends the client's repr (every pool and connection) to some errors after this
_REPR_TAIL = " : <"


def short_reason(exc: BaseException) -> str:
    """The error's text without the object dump redis-py appends to it."""
    text = str(exc) or type(exc).__name__
    return text.split(_REPR_TAIL, 1)[0]


class OutageLog:
    """Logs `what` failing once, then every `every` seconds while it goes on, then its end."""

    def __init__(self, log: logging.Logger, what: str, every: float = 10.0) -> None:
        self.log = log
        self.what = what
        self.every = every
        self._since: float | None = None
        self._logged_at = 0.0
        self._failures = 0

    def failed(self, exc: BaseException) -> None:
        now = time.monotonic()
        self._failures += 1
        if self._since is None:
            self._since = self._logged_at = now
            self.log.warning("%s: %s", self.what, short_reason(exc))
        elif now - self._logged_at >= self.every:
            self._logged_at = now
            self.log.warning(
                "%s for %.0f s (%d tries): %s",
                self.what,
                now - self._since,
                self._failures,
                short_reason(exc),
            )

    def ok(self) -> None:
        if self._since is not None:
            lasted = time.monotonic() - self._since
            self.log.warning("%s: recovered after %.1f s", self.what, lasted)
            self._since = None
            self._failures = 0
