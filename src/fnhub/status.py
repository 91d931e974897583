"""What `fnhub status` shows: live workers, queues, and every subscription's live state."""

from __future__ import annotations

import time
from typing import Any

import orjson
import redis
from sqlalchemy import select

from fnhub.keys import WORKER_GROUP, Keys
from fnhub.queue import QUEUE_LENGTHS
from fnhub.store.db import Database
from fnhub.subscriptions.manager import STATUS_STALE_SECONDS
from fnhub.subscriptions.models import Subscription
from fnhub.worker.presence import live_workers


def gather(client: redis.Redis, keys: Keys, db: Database, queues: list[str]) -> dict[str, Any]:
    workers = [{"id": wid, **info} for wid, info in live_workers(client, keys).items()]
    streams = [keys.queue(queue) for queue in queues]
    lengths = client.eval(QUEUE_LENGTHS, len(streams), *streams, keys.bundled) if streams else []
    queue_rows = []
    for queue, stream, tasks in zip(queues, streams, lengths, strict=True):
        try:
            held = client.xpending(stream, WORKER_GROUP)["pending"]
        except redis.ResponseError:
            held = 0
        # tasks: queued or running; held: entries workers read and did not finish (a bundle of
        # tasks is one entry)
        queue_rows.append({"queue": queue, "tasks": tasks, "held": held})
    with db.session() as session:
        subs = session.execute(select(Subscription).order_by(Subscription.name)).scalars().all()
    now = time.time()
    sub_rows = []
    for sub in subs:
        raw = client.hgetall(keys.subscription_status(sub.name))
        views = [orjson.loads(v) for v in raw.values()]
        views = [v for v in views if now - v.get("at", 0) < STATUS_STALE_SECONDS]
        sub_rows.append(
            {"name": sub.name, "mode": sub.mode, "enabled": sub.enabled, "servers": views}
        )
    return {"workers": workers, "queues": queue_rows, "subscriptions": sub_rows}
