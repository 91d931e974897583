"""Stored connectors (broker connections): the one place that writes them.

The HTTP API (`/connectors`), `fnhub.yaml`'s `connectors:` section, `DFF.CONN.save/delete` and
anything else that changes a connector go through here, so every write seals the secret fields
(`secret_box`), checks the settings in clear and is audited alike, and none of them needs the
HTTP package. Every edit is also checked against the subscriptions that use the connector
(`ConnectorRefused`): settings a `path: direct` reader could not make its consumer with
(`subscriptions.direct.check_direct_readers`), a delete while any subscription still uses it.
Readers open the sealed settings with the same `SecretBox` (`fnhub.connections`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, Literal

from sqlalchemy.orm import Session

from fnhub import audit
from fnhub.secret_box import SecretBox
from fnhub.store.models import Connector

#: checks a connector type's settings (in clear); raises to refuse them (what it returns, such
#: as the parsed settings, is not used)
Validate = Callable[[str, dict[str, Any]], object]


class ConnectorRefused(ValueError):
    """An edit refused for the subscriptions that use the connector, before it is made: `kind`
    `invalid_settings` (a `path: direct` reader could no longer make its consumer) or
    `connector_in_use` (a delete; `users` names them)."""

    def __init__(
        self,
        kind: Literal["invalid_settings", "connector_in_use"],
        message: str,
        users: tuple[str, ...] = (),
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.users = users


def connector_state(row: Connector, box: SecretBox) -> dict[str, Any]:
    """What the audit log compares: type, description and settings with secrets in clear (it
    masks them, telling changed secrets from unchanged ones)."""
    return {
        "type": row.type,
        "description": row.description,
        "settings": audit.in_clear(box, row.settings),
    }


def save_connector(
    session: Session,
    box: SecretBox,
    name: str,
    *,
    type_: str,
    description: str,
    settings: dict[str, Any],
    actor: str,
    validate: Validate,
    provisioned: bool | None = None,
    declared: Mapping[str, Any] | None = None,
) -> tuple[Connector, dict[str, Any] | None, dict[str, Any]]:
    """Create or replace connector `name` in `session`'s transaction. Secret fields sent as the
    mask keep their stored value; `validate` sees the settings as they will be used, then the
    subscriptions reading it on the direct path (`ConnectorRefused`; `declared`: fnhub.yaml's
    subscriptions being applied, in place of the provisioned ones). Returns the row and its
    audited state before (None: created) and after. `provisioned` (None: as it was) marks it as
    `fnhub.yaml`'s."""
    from fnhub.connections import ConnectorConfig
    from fnhub.subscriptions.direct import check_direct_readers

    row = session.get(Connector, name)
    before = connector_state(row, box) if row is not None else None
    sealed = box.seal(settings, row.settings if row is not None else None)
    opened = box.open(sealed)
    validate(type_, opened)
    check_direct_readers(session, ConnectorConfig(name, type_, opened), declared)
    now = time.time()
    if row is None:
        row = Connector(name=name, created_at=now)
        session.add(row)
    row.type = type_
    row.description = description
    row.settings = sealed
    row.updated_at = now
    if provisioned is not None:
        row.provisioned = provisioned
    after = connector_state(row, box)
    action = "connector.update" if before is not None else "connector.create"
    audit.record(session, actor, action, f"connector:{name}", before, after)
    return row, before, after


def delete_connector(
    session: Session,
    box: SecretBox,
    name: str,
    *,
    actor: str,
    declared: Mapping[str, Any] | None = None,
) -> bool:
    """Delete connector `name` (audited); False when there is none. `ConnectorRefused` while a
    subscription uses it (they would fail at their next start, their messages left unread;
    `declared` as for `save_connector`)."""
    from fnhub.subscriptions.stored import users_of

    row = session.get(Connector, name)
    if row is None:
        return False
    users = users_of(session, name, declared)
    if users:
        raise ConnectorRefused(
            "connector_in_use",
            f"connector '{name}' is used by subscription(s) {', '.join(users)}; "
            "delete them or move them to another connector first",
            tuple(users),
        )
    audit.record(session, actor, "connector.delete", f"connector:{name}", connector_state(row, box))
    session.delete(row)
    return True
