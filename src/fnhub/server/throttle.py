"""Fixed-window request counters per endpoint in Redis: one pipeline of INCR + EXPIRE."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

from fnhub.keys import Keys
from fnhub.server.errors import ApiError

UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


async def check(redis: Any, keys: Keys, endpoint: str, limits: Mapping[str, int | None]) -> None:
    """Count this request; 429 with `Retry-After` when a window is over its limit."""
    active = [(unit, limit) for unit, limit in limits.items() if limit]
    if not active:
        return
    now = time.time()
    pipe = redis.pipeline(transaction=False)
    windows = []
    for unit, _limit in active:
        seconds = UNITS[unit]
        window = int(now // seconds)
        key = keys.throttle(endpoint, unit, window)
        pipe.incr(key)
        pipe.expire(key, seconds + 1, nx=True)
        windows.append((window + 1) * seconds)
    counts = (await pipe.execute())[::2]
    retry = 0
    exceeded = []
    for (unit, limit), count, window_end in zip(active, counts, windows, strict=True):
        if count > limit:
            exceeded.append(f"{limit} per {unit}")
            retry = max(retry, math.ceil(window_end - now))
    if exceeded:
        raise ApiError(
            429,
            "throttled",
            f"too many requests to this endpoint (limit {', '.join(exceeded)})",
            headers={"Retry-After": str(max(retry, 1))},
        )
