"""The audit log: who changed what, when, from what to what, through the API, the CLI or apply.

Every change calls `record(where, actor, action, resource, before, after)` where it is made
(the repository or service function both the API and the CLI use), inside the change's own
transaction when there is one, so a change and its row commit together. Actors are
`user:<name>`, `key:<id>`, `cli` (a command on the server's machine), `project` (`fnhub apply`
and the apply at `fnhub serve` start-up) or `system` (library calls outside those). Secrets
never reach the table: fields named like secrets (and sealed values) are stored as `*****`,
with ` (changed)` when the clear value differs from the one before.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec
from sqlalchemy import Double, Index, Integer, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from fnhub.secret_box import PREFIX as SEALED_PREFIX
from fnhub.secret_box import is_secret_field
from fnhub.store.db import Database
from fnhub.store.models import Base, LongJSON

CLI = "cli"
PROJECT = "project"
SYSTEM = "system"

MASK = "*****"
CHANGED_MASK = "***** (changed)"
_ALSO_SECRET = ("password_hash", "token_hash", "csrf_token", "id_hash")


class AuditEntry(Base):
    """One change; rows are only ever added (and read newest first by id)."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_at", "at"),
        Index("ix_audit_log_actor", "actor"),
        Index("ix_audit_log_action", "action"),
        Index("ix_audit_log_resource", "resource"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[float] = mapped_column(Double)
    actor: Mapped[str] = mapped_column(String(140))
    action: Mapped[str] = mapped_column(String(64))
    resource: Mapped[str] = mapped_column(String(512))
    before: Mapped[Any] = mapped_column(LongJSON, nullable=True)
    after: Mapped[Any] = mapped_column(LongJSON, nullable=True)


def user_actor(username: str) -> str:
    return f"user:{username}"


def key_actor(key_id: str) -> str:
    return f"key:{key_id}"


def _secret_name(name: str) -> bool:
    return is_secret_field(name) or name.lower() in _ALSO_SECRET


def _sealed(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(SEALED_PREFIX)


def mask(value: Any, previous: Any = None, *, compare: bool = False) -> Any:
    """`value` with every secret replaced; with `compare`, a secret that differs from the one at
    the same place in `previous` shows as changed (only that it changed, never what)."""
    if isinstance(value, dict):
        prev = previous if isinstance(previous, dict) else {}
        out = {}
        for key, item in value.items():
            name = str(key)
            if (_secret_name(name) and item not in (None, "")) or _sealed(item):
                changed = compare and (name not in prev or prev[name] != item)
                out[name] = CHANGED_MASK if changed else MASK
            else:
                out[name] = mask(item, prev.get(name), compare=compare)
        return out
    if isinstance(value, list):
        prev_list = previous if isinstance(previous, list) else []
        return [
            mask(v, prev_list[i] if i < len(prev_list) else None, compare=compare)
            for i, v in enumerate(value)
        ]
    if _sealed(value):
        return CHANGED_MASK if compare and value != previous else MASK
    return value


def in_clear(box: Any, sealed: Any) -> Any:
    """Sealed secrets opened for `record` to compare (it masks them); as stored if they cannot
    be opened (another secret key), which `record` masks all the same."""
    try:
        return box.open(sealed)
    except ValueError:
        return sealed


def record(
    where: Session | Database,
    actor: str,
    action: str,
    resource: str,
    before: Any = None,
    after: Any = None,
) -> AuditEntry | None:
    """Add one audit row: to `where`'s transaction when it is a session (the caller commits it
    with its change), else in a transaction of its own. Pass secrets in clear if they are at
    hand (so a changed one is told from an unchanged one): they are masked here. A change whose
    before and after look the same once masked (an apply that changed nothing) is not logged."""
    plain_before = msgspec.to_builtins(before) if before is not None else None
    plain_after = msgspec.to_builtins(after) if after is not None else None
    shown_before = mask(plain_before)
    shown_after = mask(plain_after, plain_before, compare=plain_before is not None)
    if plain_before is not None and plain_after is not None and shown_before == shown_after:
        return None
    entry = AuditEntry(
        at=time.time(),
        actor=actor[:140],
        action=action[:64],
        resource=resource[:512],
        before=shown_before,
        after=shown_after,
    )
    if isinstance(where, Session):
        where.add(entry)
        return entry
    with where.session() as session, session.begin():
        session.add(entry)
    return entry


def entry_json(row: AuditEntry) -> dict[str, Any]:
    return {
        "id": row.id,
        "at": row.at,
        "actor": row.actor,
        "action": row.action,
        "resource": row.resource,
        "before": row.before,
        "after": row.after,
    }


def page(
    db: Database,
    *,
    actor: str | None = None,
    action: str | None = None,
    resource: str | None = None,
    since: float | None = None,
    until: float | None = None,
    limit: int = 50,
    cursor: int | None = None,
) -> tuple[list[dict[str, Any]], int | None]:
    """Entries newest first and the cursor of the next page (None at the end): keyset
    pagination on the id, so a page stays right while rows are being added."""
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit + 1)
    if actor:
        query = query.where(AuditEntry.actor == actor)
    if action:
        query = query.where(AuditEntry.action == action)
    if resource:
        query = query.where(AuditEntry.resource == resource)
    if since is not None:
        query = query.where(AuditEntry.at >= since)
    if until is not None:
        query = query.where(AuditEntry.at < until)
    if cursor is not None:
        query = query.where(AuditEntry.id < cursor)
    with db.session() as session:
        rows = list(session.execute(query).scalars())
    more = len(rows) > limit
    rows = rows[:limit]
    return [entry_json(r) for r in rows], (rows[-1].id if more and rows else None)
