"""W3C WebSub hub: subscriptions with intent verification, durable signed delivery with retries.

Scripts publish with `fnhub.websub.publish(topic, content, content_type)`. The server side lives
in `area` (routers and the delivery service); see docs/websub.md.
"""

from fnhub.websub.publish import publish
from fnhub.websub.store import StorageFull

__all__ = ["StorageFull", "publish"]
