"""The cycle check of routes and rules matches topics as each broker does: NATS subjects
(`*`, `>`) and RabbitMQ routing keys (`*`, `#`), through the connector types' own hooks."""

from __future__ import annotations

import pytest

from fnhub.connections import ConnectorConfig
from fnhub.subscriptions.cycles import check_cycles
from fnhub.subscriptions.spec import SpecError, parse_spec

CONNECTORS = {
    "nt": ConnectorConfig(name="nt", type="nats", settings={}),
    "rb": ConnectorConfig(name="rb", type="rabbitmq", settings={}),
}


def _route(name: str, connector: str, topic_filter: str, output: str) -> dict:
    return {
        "name": name,
        "connector": connector,
        "topics": [topic_filter],
        "publish": {"topic": output},
    }


@pytest.mark.parametrize(
    ("connector", "topic_filter", "output", "loops"),
    [
        ("nt", "plant.>", "plant.out.alarm", True),  # `>`: one or more tokens
        ("nt", "plant.*", "plant.out", True),  # `*`: exactly one token
        ("nt", "plant.*", "plant.out.alarm", False),
        ("nt", "plant.>", "plant", False),
        ("rb", "plant.#", "plant", True),  # `#`: zero or more words
        ("rb", "plant.#.alarm", "plant.a.b.alarm", True),
        ("rb", "plant.*", "plant.out", True),
        ("rb", "plant.*", "plant.out.alarm", False),
        ("rb", "plant.*.alarm", "plant.alarm", False),
    ],
)
def test_a_rule_that_matches_its_own_output(
    connector: str, topic_filter: str, output: str, loops: bool
) -> None:
    specs = [parse_spec(_route("self", connector, topic_filter, output))]
    if loops:
        with pytest.raises(SpecError, match="self → self"):
            check_cycles(specs, CONNECTORS)
    else:
        check_cycles(specs, CONNECTORS)


@pytest.mark.parametrize("connector", ["nt", "rb"])
def test_two_routes_feeding_each_other(connector: str) -> None:
    wildcard = "*" if connector == "nt" else "#"
    specs = [
        parse_spec(_route("a-to-b", connector, f"a.{wildcard}", "b.x")),
        parse_spec(_route("b-to-a", connector, "b.*", "a.y")),
    ]
    with pytest.raises(SpecError, match="a-to-b → b-to-a → a-to-b"):
        check_cycles(specs, CONNECTORS)
    elsewhere = "rb" if connector == "nt" else "nt"
    back = _route("b-to-a", connector, "b.*", "a.y")
    back["publish"]["connector"] = elsewhere  # the output goes to another broker: no loop
    check_cycles([specs[0], parse_spec(back)], CONNECTORS)
