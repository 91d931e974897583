"""What a query can know about a message besides its payload: how and where it arrived."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SqlContext:
    """Delivery facts exposed to ``qos()``, ``topic()``, ``clientid()`` and the timestamps.

    ``qos`` is the QoS the message was delivered with (Baetyl: min of publish and subscribe
    QoS).  ``timestamp_ms`` pins ``CURRENT_TIMESTAMP``/``LOCALTIMESTAMP`` (epoch ms) to the
    message's arrival time; when None they read the wall clock at evaluation.
    """

    qos: int = 0
    topic: str = ""
    client_id: str = ""
    timestamp_ms: int | None = None
