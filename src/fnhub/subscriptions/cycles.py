"""Refusing routes and rules that could feed each other forever.

Subscription A feeds B when A publishes (output or error topic) on B's connector to a topic that
one of B's topic filters matches, as B's broker matches them (its connector type's
`topic_matches`: MQTT `+`/`#`, NATS `*`/`>`, AMQP `*`/`#`, Redis globs, ...). Any cycle in that
graph — including a rule that matches its own output — is refused when saved.
"""

from __future__ import annotations

from typing import Any

from fnhub.connectors import ConnectorConfigError, get_type
from fnhub.connectors.base import exact_match
from fnhub.subscriptions.spec import SpecError, SubscriptionSpec


def topic_matches(connector_type: str, topic_filter: str, topic: str) -> bool:
    """Whether the broker of `connector_type` delivers `topic` to a subscription on the filter;
    an unknown type (refused elsewhere) compares names."""
    try:
        matches = get_type(connector_type).topic_matches
    except ConnectorConfigError:
        matches = exact_match
    return matches(topic_filter, topic)


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
