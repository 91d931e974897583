"""Stored env variables: the one place that writes them (API, CLI, `fnhub.yaml`).

Every write checks the value against its type (`values.parse`: refused with the reason),
seals a password (`secret_box`), is audited without the value (only whether it changed) and,
once committed, is announced by bumping the envs revision, which workers poll
(`envs.script`). Nothing here returns a password: `env_out` shows `*****`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from fnhub import audit
from fnhub.envs.models import EnvVar
from fnhub.envs.values import (
    MASK,
    EnvType,
    InvalidEnv,
    as_text,
    check_name,
    check_text,
    check_type,
    parse,
)
from fnhub.secret_box import SecretBox

Change = Literal["created", "updated", "unchanged"]


@dataclass(frozen=True, slots=True)
class EnvSpec:
    """A checked definition: type, the value in clear as text, description."""

    type: EnvType
    value: str
    description: str = ""


def spec_of(type_: str, value: Any, description: str = "") -> EnvSpec:
    """Check a definition; InvalidEnv says what is wrong. A password sent as `*****` keeps the
    stored one (`save_env`), so it is not parsed here."""
    checked = check_type(type_)
    text = as_text(value, checked)
    if not (checked == "password" and text == MASK):
        parse(text, checked)
    if not isinstance(description, str) or len(description) > 2000:
        raise InvalidEnv("description: text of at most 2000 characters")
    check_text(description, "the description")
    return EnvSpec(checked, text, description)


def spec_from_yaml(name: str, data: Any) -> EnvSpec:
    """`NAME: value` (a string) or `NAME: {type, value, description}` from `fnhub.yaml`."""
    check_name(name)
    if not isinstance(data, dict):
        data = {"value": data}
    unknown = sorted(set(data) - {"type", "value", "description"})
    if unknown:
        raise InvalidEnv(
            f"env '{name}': unknown field(s) {', '.join(unknown)} (known: type, value, description)"
        )
    if "value" not in data or data["value"] is None:
        raise InvalidEnv(f"env '{name}': no value")
    try:
        return spec_of(str(data.get("type", "string")), data["value"], data.get("description", ""))
    except InvalidEnv as exc:
        raise InvalidEnv(f"env '{name}': {exc}") from None


def _clear(row: EnvVar, box: SecretBox) -> str | None:
    """The stored value in clear; None for a password sealed with another secret key."""
    if row.type != "password":
        return row.value
    try:
        return box.decrypt(row.value)
    except ValueError:
        return None


def env_out(row: EnvVar) -> dict[str, Any]:
    """An env variable as the API and the CLI show it: a password as `*****`."""
    return {
        "name": row.name,
        "type": row.type,
        "value": MASK if row.type == "password" else row.value,
        "description": row.description,
        "provisioned": row.provisioned,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "updated_by": row.updated_by,
    }


def _audited(row: EnvVar, value_changed: bool) -> dict[str, Any]:
    return {
        "type": row.type,
        "description": row.description,
        "value": audit.CHANGED_MASK if value_changed else audit.MASK,
    }


def save_env(
    session: Session,
    box: SecretBox,
    name: str,
    spec: EnvSpec,
    *,
    actor: str,
    provisioned: bool | None = None,
) -> tuple[EnvVar, Change]:
    """Create or replace env variable `name` in `session`'s transaction (audited).
    `provisioned` None keeps what it was (an API or CLI change to a variable fnhub.yaml
    declares leaves it declared: the next apply puts it back)."""
    check_name(name)
    row = session.get(EnvVar, name)
    if provisioned is None:
        provisioned = row is not None and row.provisioned
    text = spec.value
    if spec.type == "password" and text == MASK:
        if row is None or row.type != "password":
            raise InvalidEnv(f"env '{name}': '{MASK}' keeps a stored password; there is none")
        kept = _clear(row, box)
        if kept is None:
            raise InvalidEnv(
                f"env '{name}': the stored password was sealed with another secret key; "
                "send the password itself"
            )
        text = kept
    created = row is None
    same_value = row is not None and row.type == spec.type and _clear(row, box) == text
    if (
        row is not None
        and same_value
        and (row.description, row.provisioned) == (spec.description, provisioned)
    ):
        return row, "unchanged"
    before = None if row is None else _audited(row, value_changed=False)
    now = time.time()
    if row is None:
        row = EnvVar(name=name, created_at=now)
        session.add(row)
    row.type = spec.type
    if not same_value:
        row.value = box.encrypt(text) if spec.type == "password" else text
    row.description = spec.description
    row.provisioned = provisioned
    row.updated_at = now
    row.updated_by = actor
    action = "env.create" if created else "env.update"
    after = _audited(row, value_changed=not created and not same_value)
    audit.record(session, actor, action, f"env:{name}", before, after)
    return row, "created" if created else "updated"


def delete_env(session: Session, name: str, *, actor: str) -> bool:
    """Delete env variable `name` (audited); False when there is none."""
    row = session.get(EnvVar, name)
    if row is None:
        return False
    audit.record(session, actor, "env.delete", f"env:{name}", _audited(row, False))
    session.delete(row)
    session.flush()  # gone for the rest of the transaction too (`session.get` included)
    return True


def sync_provisioned(
    session: Session, box: SecretBox, specs: Mapping[str, EnvSpec], *, actor: str
) -> dict[str, list[str]]:
    """Make the provisioned env variables exactly `specs` (ones made by the API or CLI stay,
    unless declared, which makes them provisioned); names by what happened to them."""
    changes: dict[str, list[str]] = {"created": [], "updated": [], "removed": [], "unchanged": []}
    for name, spec in specs.items():
        _row, change = save_env(session, box, name, spec, actor=actor, provisioned=True)
        changes[change].append(name)
    stale = select(EnvVar).where(EnvVar.provisioned.is_(True), EnvVar.name.not_in(list(specs)))
    for row in list(session.execute(stale).scalars()):
        delete_env(session, row.name, actor=actor)
        changes["removed"].append(row.name)
    return changes
