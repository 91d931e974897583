"""`fnhub.websub.publish()` for scripts: runs inside worker processes, so it is sync and writes
straight to Redis (the topic's stream, or the ingest stream the hub forwards to Kafka).

Scripts are trusted code published by an admin, so the "registered topics only" policy of the
public hub endpoint does not apply here.
"""

from __future__ import annotations

from typing import Any

from fnhub import runtime
from fnhub.websub.content import encode
from fnhub.websub.policy import PolicyError, url_hash
from fnhub.websub.store import entry_fields, new_notification_event


def publish(topic: str, content: Any, content_type: str | None = None) -> str:
    """Publish one notification to every subscriber of `topic`; returns its stored position.

    `content` may be bytes, str or any JSON-serialisable value; `content_type` defaults to
    application/octet-stream, text/plain; charset=utf-8 or application/json accordingly.
    """
    if not topic or len(topic) > 2048:
        raise PolicyError("topic must be a URL of at most 2048 characters")
    settings = runtime.settings()
    keys = runtime.keys()
    body, ctype = encode(content, content_type, settings.websub_content_max_bytes)
    topic_hash = url_hash(topic)
    client = runtime.redis_client()
    with client.pipeline(transaction=False) as pipe:
        if settings.websub_store == "kafka":
            fields = {"topic": topic, **entry_fields(ctype, body)}
            pipe.xadd(keys.websub_ingest, fields)  # type: ignore[arg-type]
            pipe.publish(keys.websub_events, "i")
        else:
            pipe.xadd(
                keys.websub_topic(topic_hash),
                entry_fields(ctype, body),  # type: ignore[arg-type]
                maxlen=settings.websub_stream_max_len,
                approximate=True,
            )
            pipe.publish(keys.websub_events, new_notification_event(topic_hash))
        pipe.hincrby(keys.websub_metrics, "published", 1)
        entry_id, *_ = pipe.execute()
    return entry_id.decode()
