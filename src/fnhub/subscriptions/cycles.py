"""Refusing routes and rules that could feed each other forever.

Subscription A feeds B when A publishes (output or error topic) on B's connector to a topic that
one of B's topic filters matches (MQTT `+`/`#`, Redis glob patterns, exact names elsewhere). Any
cycle in that graph — including a rule that matches its own output — is refused when saved.
"""

from __future__ import annotations

import fnmatch
from typing import Any

from fnhub.subscriptions.spec import SpecError, SubscriptionSpec


def mqtt_matches(topic_filter: str, topic: str) -> bool:
    if topic_filter.startswith("$share/"):
        topic_filter = topic_filter.split("/", 2)[2] if topic_filter.count("/") >= 2 else ""
    f_parts, t_parts = topic_filter.split("/"), topic.split("/")
    for i, part in enumerate(f_parts):
        if part == "#":
            return True
        if i >= len(t_parts) or (part != "+" and part != t_parts[i]):
            return False
    return len(f_parts) == len(t_parts)


def topic_matches(connector_type: str, topic_filter: str, topic: str) -> bool:
    if connector_type == "mqtt":
        return mqtt_matches(topic_filter, topic)
    if connector_type == "redis" and any(c in topic_filter for c in "*?["):
        return fnmatch.fnmatchcase(topic, topic_filter)
    return topic_filter == topic


def check_cycles(specs: list[SubscriptionSpec], connectors: dict[str, Any]) -> None:
    """Raise SpecError naming the first cycle found among enabled subscriptions."""
    active = [s for s in specs if s.enabled]
    edges: dict[str, list[str]] = {s.name: [] for s in active}
    for a in active:
        for target in (a.publish, a.error_publish):
            if target is None:
                continue
            connector, topic = a.output_target(target)
            kind = getattr(connectors.get(connector), "type", "")
            for b in active:
                if b.connector == connector and any(
                    topic_matches(kind, f, topic) for f in b.topics
                ):
                    edges[a.name].append(b.name)
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(name: str) -> None:
        state[name] = 1
        path.append(name)
        for nxt in edges[name]:
            if state.get(nxt) == 1:
                cycle = [*path[path.index(nxt) :], nxt]
                raise SpecError(
                    "these routes/rules would loop forever: "
                    + " → ".join(cycle)
                    + " (an output topic matches an input topic of the next one)"
                )
            if nxt not in state:
                visit(nxt)
        path.pop()
        state[name] = 2

    for spec in active:
        if spec.name not in state:
            visit(spec.name)
