"""`fnhub.yaml` sections `connectors:` and `subscriptions:`, applied as provisioned resources.

connectors:
  plant: {type: mqtt, settings: {host: 127.0.0.1, port: 1883}}
subscriptions:
  temps: {connector: plant, topics: ["sensors/+/temp"], function: sensors.on_temp}

Applying makes the provisioned connectors and subscriptions exactly the declared ones (those
made through the API or CLI stay): one the file no longer declares is removed. A connector the
file drops while a subscription that stays still uses it is refused, naming that subscription.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fnhub.config import Settings, load_project_file
from fnhub.project import Change, SectionChanges
from fnhub.store.db import Database
from fnhub.store.models import Connector
from fnhub.subscriptions.models import Subscription


def _db(settings: Settings) -> Database:
    return Database(settings.resolved_db_url())


def _bump(settings: Settings) -> None:
    from fnhub.revisions import bump_once

    bump_once(settings, lambda keys: keys.subscriptions_revision)


def apply_connectors(settings: Settings, value: Any) -> SectionChanges:
    from fnhub import audit
    from fnhub.connectors import validate_settings
    from fnhub.secret_box import SecretBox, resolve_secret_key
    from fnhub.store.connectors import ConnectorRefused, delete_connector, save_connector

    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise ValueError("fnhub.yaml: `connectors` must map names to {type, settings}")
    box = SecretBox(resolve_secret_key(settings))
    declared_subs = load_project_file(settings.project_dir).get("subscriptions") or {}
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
                        provisioned=True,
                        declared=declared_subs,  # the subscriptions it will have
                    )
                except ValueError as exc:
                    raise ValueError(f"fnhub.yaml: connector {name!r}: {exc}") from None
                changes.add(name, _change(before, after))
            for name in sorted(_provisioned(session, Connector) - set(value)):
                try:
                    delete_connector(
                        session, box, name, actor=audit.PROJECT, declared=declared_subs
                    )
                except ConnectorRefused as exc:
                    raise ValueError(
                        f"fnhub.yaml: connector {name!r} is no longer declared, but subscription "
                        f"{exc.users[0]!r} still uses it; remove or change that subscription too"
                    ) from None
                changes.removed.append(name)
    finally:
        db.dispose()
    _bump(settings)
    return changes


def apply_subscriptions(settings: Settings, value: Any) -> SectionChanges:
    from fnhub import audit
    from fnhub.subscriptions.area import remove_subscription, save_subscription, subscription_out

    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise ValueError("fnhub.yaml: `subscriptions` must map names to definitions")
    changes = SectionChanges("subscriptions")
    db = _db(settings)
    try:
        # dropped ones go first: the cycle check of the declared ones must not see them
        with db.session() as session:
            dropped = _provisioned(session, Subscription) - set(value)
        for name in sorted(dropped):
            if remove_subscription(db, name, actor=audit.PROJECT):
                changes.removed.append(name)
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


def _provisioned(session: Session, model: type[Connector] | type[Subscription]) -> set[str]:
    return set(session.execute(select(model.name).where(model.provisioned.is_(True))).scalars())


def _change(before: dict[str, Any] | None, after: dict[str, Any]) -> Change:
    if before is None:
        return "created"
    return "unchanged" if before == after else "updated"
