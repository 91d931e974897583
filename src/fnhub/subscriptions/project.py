"""`fnhub.yaml` sections `connectors:` and `subscriptions:`, applied as provisioned resources.

connectors:
  plant: {type: mqtt, settings: {host: 127.0.0.1, port: 1883}}
subscriptions:
  temps: {connector: plant, topics: ["sensors/+/temp"], function: sensors.on_temp}
"""

from __future__ import annotations

from typing import Any

from fnhub.config import Settings
from fnhub.project import Change, SectionChanges
from fnhub.store.db import Database


def _db(settings: Settings) -> Database:
    return Database(settings.resolved_db_url())


def _bump(settings: Settings) -> None:
    from fnhub.revisions import bump_once

    bump_once(settings, lambda keys: keys.subscriptions_revision)


def apply_connectors(settings: Settings, value: Any) -> SectionChanges:
    from fnhub import audit
    from fnhub.connectors import validate_settings
    from fnhub.secret_box import SecretBox, resolve_secret_key
    from fnhub.store.connectors import save_connector

    if not isinstance(value, dict):
        raise ValueError("fnhub.yaml: `connectors` must map names to {type, settings}")
    box = SecretBox(resolve_secret_key(settings))
    changes = SectionChanges("connectors")
    db = _db(settings)
    try:
        with db.session() as session, session.begin():
            for name, spec in value.items():
                if not isinstance(spec, dict) or "type" not in spec:
                    raise ValueError(f"fnhub.yaml: connector {name!r} needs a `type`")
                try:
                    _row, before, after = save_connector(
                        session,
                        box,
                        name,
                        type_=spec["type"],
                        description=spec.get("description", ""),
                        settings=spec.get("settings") or {},
                        actor=audit.PROJECT,
                        validate=validate_settings,
                    )
                except ValueError as exc:
                    raise ValueError(f"fnhub.yaml: connector {name!r}: {exc}") from None
                changes.add(name, _change(before, after))
    finally:
        db.dispose()
    _bump(settings)
    return changes


def apply_subscriptions(settings: Settings, value: Any) -> SectionChanges:
    from fnhub import audit
    from fnhub.subscriptions.area import save_subscription, subscription_out
    from fnhub.subscriptions.models import Subscription

    if not isinstance(value, dict):
        raise ValueError("fnhub.yaml: `subscriptions` must map names to definitions")
    changes = SectionChanges("subscriptions")
    db = _db(settings)
    try:
        for name, data in value.items():
            with db.session() as session:
                row = session.get(Subscription, name)
                before = subscription_out(row) if row is not None else None
            after = save_subscription(
                db, settings, name, dict(data), actor=audit.PROJECT, provisioned=True
            )
            changes.add(name, _change(before, after))
    finally:
        db.dispose()
    _bump(settings)
    return changes


def _change(before: dict[str, Any] | None, after: dict[str, Any]) -> Change:
    if before is None:
        return "created"
    return "unchanged" if before == after else "updated"
