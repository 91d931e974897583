"""Script drafts: code saved without publishing, one draft per script.

A draft is not validated and runs nowhere; it keeps what someone is writing (maybe for a script
that has no published version yet) until it is published or thrown away. `base_version` is the
active version the edit started from, so an editor can show what changed since.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from fnhub import audit
from fnhub.scripts.store import code_hash
from fnhub.store.db import Database, rows_changed
from fnhub.store.models import Script, ScriptDraft


@dataclass(frozen=True, slots=True)
class Draft:
    script: str
    code: str
    hash: str
    base_version: int | None
    author: str
    updated_at: float

    def public(self) -> dict[str, Any]:
        return {
            "script": self.script,
            "code": self.code,
            "base_version": self.base_version,
            "author": self.author,
            "updated_at": self.updated_at,
        }


def _audited(row: ScriptDraft) -> dict[str, Any]:
    """What the audit log keeps of a draft (code is never logged)."""
    return {"hash": row.hash, "base_version": row.base_version, "bytes": len(row.code.encode())}


def _draft(row: ScriptDraft) -> Draft:
    return Draft(row.script, row.code, row.hash, row.base_version, row.author, row.updated_at)


class DraftStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, name: str) -> Draft | None:
        with self.db.session() as session:
            row = session.get(ScriptDraft, name)
            return None if row is None else _draft(row)

    def list(self) -> list[dict[str, Any]]:
        """Every draft without its code, newest first."""
        with self.db.session() as session:
            rows = session.execute(
                select(
                    ScriptDraft.script,
                    ScriptDraft.base_version,
                    ScriptDraft.author,
                    ScriptDraft.updated_at,
                    ScriptDraft.code,
                ).order_by(ScriptDraft.updated_at.desc())
            ).all()
        return [
            {
                "script": script,
                "base_version": base,
                "author": author,
                "updated_at": updated_at,
                "bytes": len(code.encode()),
            }
            for script, base, author, updated_at, code in rows
        ]

    def save(self, name: str, code: str, *, author: str, base_version: int | None = None) -> Draft:
        """Create or replace the draft. Without `base_version` it keeps the one of the draft it
        replaces, or takes the script's active version (None for a new script)."""
        for attempt in (1, 2):  # two first saves at once: the loser updates the winner's row
            try:
                return self._save(name, code, author, base_version)
            except IntegrityError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _save(self, name: str, code: str, author: str, base_version: int | None) -> Draft:
        with self.db.session() as session, session.begin():
            row = session.get(ScriptDraft, name)
            before = None if row is None else _audited(row)
            if base_version is None:
                if row is not None:
                    base_version = row.base_version
                else:
                    script = session.get(Script, name)
                    base_version = script.active_version if script is not None else None
            if row is None:
                row = ScriptDraft(script=name)
                session.add(row)
            row.code = code
            row.hash = code_hash(code)
            row.base_version = base_version
            row.author = author[:140]
            row.updated_at = time.time()
            audit.record(
                session, author, "script.draft_save", f"script:{name}", before, _audited(row)
            )
            return _draft(row)

    def delete(self, name: str, *, actor: str = audit.SYSTEM) -> bool:
        with self.db.session() as session, session.begin():
            row = session.get(ScriptDraft, name)
            if row is None:
                return False
            audit.record(session, actor, "script.draft_delete", f"script:{name}", _audited(row))
            session.delete(row)
            return True

    def discard_published(self, name: str, hash_: str) -> bool:
        """Delete the draft if it holds exactly the code just published (a draft saved since
        is newer work and stays)."""
        with self.db.session() as session, session.begin():
            gone = session.execute(
                delete(ScriptDraft).where(ScriptDraft.script == name, ScriptDraft.hash == hash_)
            )
            return bool(rows_changed(gone))
