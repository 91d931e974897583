"""`fnhub.websub.publish()` for scripts: runs inside worker processes, so it is sync and writes
straight to Redis (the topic's stream, or the ingest stream the hub forwards to Kafka).

Scripts are trusted code published by an admin, so neither the credential nor the "registered
topics only" rule of the public hub endpoint applies here. The storage caps do (same Lua call as
the hub's store): beyond the global one `StorageFull` is raised.
"""

from __future__ import annotations

from typing import Any

from redis.commands.core import Script
from redis.typing import EncodableT, FieldT

from fnhub import runtime
from fnhub.redis_wait import confirmer, run_confirmed_sync
from fnhub.websub.content import encode
from fnhub.websub.policy import PolicyError, url_hash
from fnhub.websub.store import APPEND_SCRIPT, append_call, appended, entry_fields

#: bound to no client (bytes need no encoder): each call names the script's Redis client
_APPEND = Script(None, APPEND_SCRIPT.encode())  # type: ignore[arg-type]  # calls name a client


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
    # returned: behind Sentinel once a replica has it (CallError `not_replicated` if not)
    if settings.websub_store == "kafka":  # the hub forwards the ingest stream to Kafka
        with client.pipeline(transaction=False) as pipe:
            fields: dict[FieldT, EncodableT] = {"topic": topic, **entry_fields(ctype, body)}
            pipe.xadd(keys.websub_ingest, fields)
            pipe.publish(keys.websub_events, "i")
            pipe.hincrby(keys.websub_metrics, "published", 1)
            entry_id: bytes = run_confirmed_sync(settings, client, pipe, "the notification")[0]
        return entry_id.decode()
    script_keys, args = append_call(keys, settings, topic_hash, ctype, body)
    confirm = confirmer(settings)
    if confirm is None:
        return appended(_APPEND(keys=script_keys, args=args, client=client), settings)
    with client.pipeline(transaction=True) as pipe:
        _APPEND(keys=script_keys, args=args, client=pipe)
        (result,) = confirm.execute_sync(client, pipe, "the notification")
    return appended(result, settings)
