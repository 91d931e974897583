"""W3C WebSub hub: subscriptions with intent verification, durable signed delivery with retries.

Scripts publish with `fnhub.websub.publish(topic, content, content_type)`. The server side lives
in `area` (routers and the delivery service); see docs/websub.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fnhub.websub.script_publish import publish
    from fnhub.websub.store import StorageFull

__all__ = ["StorageFull", "publish"]


def __getattr__(name: str) -> object:
    """The script API, imported on first use: the feature table imports this package for every
    command (`fnhub --help` included), and the publisher pulls in the Redis client (~0.1 s)."""
    value: object
    if name == "publish":
        from fnhub.websub.script_publish import publish as value
    elif name == "StorageFull":
        from fnhub.websub.store import StorageFull as value
    else:
        raise AttributeError(f"module 'fnhub.websub' has no attribute {name!r}")
    globals()[name] = value
    return value
