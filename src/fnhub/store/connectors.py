"""Stored connectors (broker connections): the one place that writes them.

The HTTP API (`/connectors`), `fnhub.yaml`'s `connectors:` section and anything else that
changes a connector go through here, so every write seals the secret fields (`secret_box`),
checks the settings in clear and is audited alike, and none of them needs the HTTP package.
Readers open the sealed settings with the same `SecretBox` (`fnhub.connections`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from fnhub import audit
from fnhub.secret_box import SecretBox
from fnhub.store.models import Connector

#: checks a connector type's settings (in clear); raises to refuse them (what it returns, such
#: as the parsed settings, is not used)
Validate = Callable[[str, dict[str, Any]], object]


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
) -> tuple[Connector, dict[str, Any] | None, dict[str, Any]]:
    """Create or replace connector `name` in `session`'s transaction. Secret fields sent as the
    mask keep their stored value; `validate` sees the settings as they will be used. Returns the
    row and its audited state before (None: created) and after. `provisioned` (None: as it was)
    marks it as `fnhub.yaml`'s."""
    row = session.get(Connector, name)
    before = connector_state(row, box) if row is not None else None
    sealed = box.seal(settings, row.settings if row is not None else None)
    validate(type_, box.open(sealed))
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


def delete_connector(session: Session, box: SecretBox, name: str, *, actor: str) -> bool:
    """Delete connector `name` (audited); False when there is none."""
    row = session.get(Connector, name)
    if row is None:
        return False
    audit.record(session, actor, "connector.delete", f"connector:{name}", connector_state(row, box))
    session.delete(row)
    return True
