"""Intents whose verification failed for an unexpected reason (a bug, a corrupt intent): tried
again with backoff, then given up, recorded with the reason and counted.

A passing failure (Redis or the database away) is `verify`'s to retry; anything else used to
acknowledge the intent at once with a traceback in one server's log, and the subscriber's
request vanished. Now each verification of it that fails so is counted in Redis per intent
(`keys.websub_verify_attempts`, so the count goes on where a claim moves the intent to another
server), the next one `BACKOFF_SECONDS` later, doubling; after `VERIFY_ATTEMPTS` the intent is
acknowledged and kept in `keys.websub_failed_intents` (the newest `KEPT`), shown by
`GET /api/v1/websub/failed-intents` and `fnhub websub failed`, and counted cluster-wide
(`fnhub_websub_verification_errors_total`). An existing subscription of the pair stays as it
was, as after any failed re-subscription (§5.1).
"""

from __future__ import annotations

import time
from typing import Any

import redis
import redis.asyncio
from redis.typing import EncodableT, FieldT

from fnhub.keys import Keys
from fnhub.redis_replies import as_entries

#: verifications of one intent that may fail unexpectedly before it is given up
VERIFY_ATTEMPTS = 4
#: the wait before the second one, doubling: 1, 2, 4 s
BACKOFF_SECONDS = 1.0
#: given-up intents kept for the API and the CLI
KEPT = 1000
#: `keys.websub_metrics` field counting them
COUNTER = "verification_errors"


def backoff(attempt: int) -> float:
    """The wait after the `attempt`-th failed verification (1-based)."""
    return float(BACKOFF_SECONDS * 2 ** (attempt - 1))


def reason_of(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def count_failure(client: redis.asyncio.Redis, keys: Keys, entry_id: bytes) -> int:
    """One more failed verification of the intent `entry_id`; how many so far."""
    return int(await client.hincrby(keys.websub_verify_attempts, entry_id, 1))


async def give_up(
    client: redis.asyncio.Redis,
    keys: Keys,
    entry_id: bytes,
    intent: dict[str, str],
    reason: str,
    attempts: int,
    server_id: str,
) -> None:
    """Record the intent as failed and count it (its acknowledgement is the caller's)."""
    record: dict[FieldT, EncodableT] = {
        "intent": entry_id,
        "mode": intent.get("mode", ""),
        "topic": intent.get("topic", ""),
        "callback": intent.get("callback", ""),
        "reason": reason[:2000],
        "attempts": attempts,
        "failed_at": repr(time.time()),
        "server": server_id,
    }
    async with client.pipeline(transaction=True) as pipe:
        pipe.xadd(keys.websub_failed_intents, record, maxlen=KEPT, approximate=True)
        pipe.hincrby(keys.websub_metrics, COUNTER, 1)
        pipe.hdel(keys.websub_verify_attempts, entry_id)
        await pipe.execute()


def failed_intents(client: redis.Redis, keys: Keys, limit: int = 50) -> list[dict[str, Any]]:
    """The intents given up, newest first."""
    rows = as_entries(client.xrevrange(keys.websub_failed_intents, count=limit))
    listed = []
    for entry_id, fields in rows:
        row = {k.decode(): v.decode() for k, v in fields.items()}
        listed.append(
            {
                "id": entry_id.decode(),
                "mode": row["mode"],
                "topic": row["topic"],
                "callback": row["callback"],
                "reason": row["reason"],
                "attempts": int(row["attempts"]),
                "failed_at": float(row["failed_at"]),
                "server": row["server"],
            }
        )
    return listed
