"""How long to wait before the next retry: capped exponential delays with equal jitter.

Every retry loop in fnhub (a reader that lost Redis, the recorder, a worker flushing results,
start-up waits, restarted loops, broker reconnects, WebSub redeliveries) takes its pauses from
one `Backoff`. The jitter matters: processes that failed together, because Redis or a broker
restarted, would otherwise all knock again in the same instant, every time. Equal jitter draws
each pause from the upper half of the nominal delay, so a retry is never much sooner than
planned. redis-py's `EqualJitterBackoff` computes the same for a given failure count, but is
fixed at doubling and keeps no count; loops here need a settable factor and a `reset()`.

A loop on the data path that waits for fnhub's own Redis to answer again (queue and reply
reads, enqueues and their retries, results) takes `redis_retry`: its pauses stop growing at
`REDIS_RETRY_CAP_SECONDS`, so it works again within about a second of Redis coming back.
"""

from __future__ import annotations

import random

_MAX_EXPONENT = 64  # far past any cap; keeps the power from growing without bound

#: the longest pause of a data-path loop retrying fnhub's Redis (`redis_retry`). A restart or
#: a Sentinel failover keeps Redis away 2-3 s; pauses still doubling towards 5 s then put the
#: next try seconds after it was back (the cluster's failover: roles reconnected at +2.5 s,
#: subscriptions ran at +5.3 s). A try a second per loop costs Redis nothing worth saving (a
#: refused connection, or one command), however long the outage.
REDIS_RETRY_CAP_SECONDS = 1.0


class Backoff:
    """Pauses of `initial * factor**n` (n failures since the last `reset`), capped at `cap`,
    each drawn uniformly from [delay / 2, delay]."""

    def __init__(self, initial: float = 0.2, cap: float = 30.0, factor: float = 2.0) -> None:
        if initial <= 0 or cap < initial or factor < 1:
            raise ValueError(f"bad backoff: initial={initial}, cap={cap}, factor={factor}")
        self.initial = initial
        self.cap = cap
        self.factor = factor
        self.failures = 0

    def nominal(self) -> float:
        """The delay the next pause is drawn under (no jitter)."""
        return min(self.cap, self.initial * self.factor**self.failures)

    def next(self) -> float:
        """The pause before the next attempt; each call counts one more failure."""
        delay = self.nominal()
        self.failures = min(self.failures + 1, _MAX_EXPONENT)
        return random.uniform(delay / 2, delay)

    def reset(self) -> None:
        """After a success: the next failure waits the shortest pause again."""
        self.failures = 0


def redis_retry(initial: float = 0.1) -> Backoff:
    """The pauses of a data-path loop while fnhub's Redis cannot be reached: from `initial`,
    at most `REDIS_RETRY_CAP_SECONDS` (see there why)."""
    return Backoff(initial=initial, cap=REDIS_RETRY_CAP_SECONDS)
