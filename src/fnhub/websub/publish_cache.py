"""What a hub server remembers between publishes so that most cost no SQL query: the topics whose
row exists, and, for a short while, the topics known to have an active subscription.

Only positive answers are kept. A topic's row is never deleted (deregistering only clears its
flag), so "it exists" stays true. "It has subscribers" may go stale when its subscriptions end
(unsubscribed, expired, gone, possibly on another server); a stale yes is harmless: the
notification is stored as a script's publish always is (`script_publish`), and delivered only by
the deliverers of active subscriptions whose cursor is before it (each stops at its lease's end
and on its `u:` event), while a new subscription starts at the stream's end, after it; the
reclaimer removes it. Its cost is one stored notification (and, for a publish without content,
one fetch of the topic) until the answer lapses (`websub_subscribed_cache_seconds`), or sooner:
an ended subscription's `u:` event clears every yes on every server. A no is never kept, so a
new subscription is seen by the very next publish (with its `starting` marker from before its
verification GET, as without this cache).
"""

from __future__ import annotations

import time

MAX_TOPICS = 100_000  # beyond this many remembered topics, forget them all (each costs a query)


class PublishCache:
    def __init__(self, subscribed_seconds: float) -> None:
        """`subscribed_seconds`: how long a yes to "has subscribers" is kept (0: never)."""
        self.subscribed_seconds = subscribed_seconds
        self._known: set[str] = set()
        self._subscribed_until: dict[str, float] = {}
        #: bumped by `forget_subscribed`: a yes read before it is not kept (`note_subscribed`)
        self.generation = 0

    def known(self, topic_hash: str) -> bool:
        """Whether the topic's row is known to exist."""
        return topic_hash in self._known

    def note_known(self, topic_hash: str) -> None:
        if len(self._known) >= MAX_TOPICS:
            self._known.clear()
        self._known.add(topic_hash)

    def subscribed(self, topic_hash: str) -> bool:
        """Whether the topic had an active subscription less than `subscribed_seconds` ago."""
        until = self._subscribed_until.get(topic_hash)
        if until is None:
            return False
        if time.monotonic() < until:
            return True
        del self._subscribed_until[topic_hash]
        return False

    def note_subscribed(self, topic_hash: str, generation: int) -> None:
        """Keep a yes read when `generation` was current: none if a subscription ended since
        (the read may have seen it still active)."""
        if self.subscribed_seconds <= 0 or generation != self.generation:
            return
        if len(self._subscribed_until) >= MAX_TOPICS:
            self._subscribed_until.clear()
        self._subscribed_until[topic_hash] = time.monotonic() + self.subscribed_seconds

    def forget_subscribed(self) -> None:
        """A subscription ended (which topic's is not said): every yes is asked again."""
        self.generation += 1
        self._subscribed_until.clear()
