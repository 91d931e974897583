"""Subscriptions as stored: a row as a definition, and every definition with the connectors,
read by the servers' manager (queued path) and the workers (direct path)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fnhub.config import Settings
from fnhub.connections import ConnectorConfig, load_connectors
from fnhub.store.db import Database
from fnhub.subscriptions.models import Subscription
from fnhub.subscriptions.spec import SpecError, SubscriptionSpec, parse_spec

log = logging.getLogger(__name__)


def row_to_dict(row: Subscription) -> dict[str, Any]:
    return {
        "name": row.name,
        "connector": row.connector,
        "topics": row.topics,
        "function": row.function,
        "sql": row.sql,
        "mode": row.mode,
        "window": row.window,
        "options": row.options or {},
        "publish": row.publish,
        "error_publish": row.error_publish,
        "queue": row.queue,
        "record": row.record,
        "record_limit": row.record_limit,
        "enabled": row.enabled,
        "path": row.path or "queued",
    }


def load_stored(
    db: Database, settings: Settings
) -> tuple[list[SubscriptionSpec], dict[str, ConnectorConfig]]:
    """Every subscription that parses (`load_specs`), and every connector with its secrets in
    clear."""
    connectors = load_connectors(db, settings)
    return load_specs(db), connectors


def load_specs(db: Database) -> list[SubscriptionSpec]:
    """Every subscription that parses (one stored before a rule changed is logged and
    skipped)."""
    with db.session() as session:
        rows = session.execute(select(Subscription)).scalars().all()
        specs = []
        for row in rows:
            try:
                specs.append(parse_spec(row_to_dict(row)))
            except SpecError as exc:
                log.error("%s", exc)
    return specs


def connectors_used(data: dict[str, Any]) -> set[str]:
    """The connectors a subscription definition reads from or publishes to."""
    used = {data.get("connector")}
    for target in ("publish", "error_publish"):
        if isinstance(data.get(target), dict):
            used.add(data[target].get("connector"))
    return {c for c in used if isinstance(c, str)}


def definitions_after(
    session: Session, declared: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    """The subscriptions there will be, as definitions: the stored ones, with fnhub.yaml's in
    place of the provisioned ones when `declared` (its `subscriptions:`, being applied) is
    given."""
    stored = [
        row_to_dict(row)
        for row in session.execute(select(Subscription)).scalars()
        if declared is None or not (row.provisioned or row.name in declared)
    ]
    declared_ones = [
        {"name": name, **data} for name, data in (declared or {}).items() if isinstance(data, dict)
    ]
    return [*stored, *declared_ones]


def users_of(
    session: Session, connector: str, declared: Mapping[str, Any] | None = None
) -> list[str]:
    """The subscriptions (`definitions_after`) that read from or publish to `connector`, by
    name."""
    definitions = definitions_after(session, declared)
    return sorted({str(d["name"]) for d in definitions if connector in connectors_used(d)})
