"""`path: direct`: what a subscription whose worker children consume the broker themselves is.

The server runs no runner for it (`manager`); every worker serving the function's queue runs
children that read the broker, run the function, write the records and acknowledge a batch at
a time (`fnhub.worker.direct`, supervised by `fnhub.worker.direct_subs`). This module holds
what both sides agree on: the job a child is handed, and the check made when one is saved.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgspec
from sqlalchemy.orm import Session

from fnhub.connections import ConnectorConfig
from fnhub.connectors import ConnectorConfigError, DirectPlace, create_direct_consumer
from fnhub.connectors.base import stable_client_id
from fnhub.store.connectors import ConnectorRefused
from fnhub.subscriptions.spec import SpecError, SubscriptionSpec, parse_spec
from fnhub.subscriptions.stored import definitions_after


@dataclass(frozen=True)
class DirectJob:
    """One subscription as a worker's direct children run it (pickled to each child)."""

    spec_json: bytes
    connector: ConnectorConfig
    #: every connector a rule's `publish` or `error_publish` names, by name
    outputs: dict[str, ConnectorConfig]
    #: how many children of this worker share the subscription's window
    children: int

    @property
    def spec(self) -> SubscriptionSpec:
        return msgspec.json.decode(self.spec_json, type=SubscriptionSpec)

    @property
    def share(self) -> int:
        """The messages one child holds at most: its part of the window."""
        spec = self.spec
        return max(1, -(-spec.window // self.children))


def consumer_args(spec: SubscriptionSpec) -> tuple[str, dict[str, Any]]:
    """The group and the source options of a direct consumer: the group as the queued path
    names it (so a subscription moved between paths keeps its place), without the options
    that name a server's own consumer."""
    options = dict(spec.options)
    group = options.pop("group", None) or f"fnhub-{spec.name}"
    options.pop("client_id", None)
    options.pop("consumer", None)
    return str(group), options


def session_client_id(spec: SubscriptionSpec, connector: str) -> str:
    """The client id a broker session of this subscription goes by, as the queued path's
    `single` mode names it (`options.client_id`, else derived from connector + subscription),
    so a subscription moved between the paths resumes its session (MQTT)."""
    return str(spec.options.get("client_id") or stable_client_id(connector, spec.name))


def check_direct(spec: SubscriptionSpec, connector: ConnectorConfig) -> None:
    """SpecError when the connector (or its options) has no direct path."""
    reason = direct_refusal(spec, connector)
    if reason is not None:
        raise SpecError(f"subscription {spec.name!r}: {reason}")


def check_direct_readers(
    session: Session, connector: ConnectorConfig, declared: Mapping[str, Any] | None = None
) -> None:
    """`ConnectorRefused` (a ValueError) when `connector`'s new settings would strand a
    subscription that reads it on the direct path (its children could no longer make their
    consumer, so it would stop reading while its definition still looked fine). `declared`
    (fnhub.yaml's subscriptions, when the project is applied) stands for the provisioned ones
    it will replace. Called by `store.connectors.save_connector`, which every edit goes
    through."""
    for spec in _subscriptions_after(session, declared):
        if spec.path != "direct" or spec.connector != connector.name:
            continue
        reason = direct_refusal(spec, connector)
        if reason is not None:
            raise ConnectorRefused(
                "invalid_settings",
                f"subscription {spec.name!r} reads this connector on path: direct, which these "
                f"settings refuse ({reason}); move it to path: queued first, or with this change",
            )


def _subscriptions_after(
    session: Session, declared: Mapping[str, Any] | None
) -> list[SubscriptionSpec]:
    """The subscriptions there will be (`stored.definitions_after`) that parse."""
    specs = {}
    for data in definitions_after(session, declared):
        try:
            specs[data["name"]] = parse_spec(data)
        except (SpecError, TypeError):  # loading or applying the subscriptions says why
            continue
    return list(specs.values())


def direct_refusal(spec: SubscriptionSpec, connector: ConnectorConfig) -> str | None:
    """Why `connector` (or the subscription's options) has no direct path; None if it has."""
    group, options = consumer_args(spec)
    try:
        create_direct_consumer(
            connector.type,
            connector.settings,
            topics=list(spec.topics),
            group=group,
            consumer="check",
            options=options,
            place=DirectPlace(
                spec.mode, window=spec.window, client_id=session_client_id(spec, connector.name)
            ),
        )
    except ConnectorConfigError as exc:
        return str(exc)
    return None
