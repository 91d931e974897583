"""Publishing script versions: the database holds the truth, Redis a copy workers read.

A publish validates the changed scripts together (so new scripts may import each other), stores
each as a new immutable version, moves the active pointer, then mirrors code and metadata into
Redis and bumps the scripts revision so every cache reloads. A broken script raises ScriptError
and changes nothing: the previous version stays active.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from dataclasses import dataclass

import msgspec
import redis
from redis.client import Pipeline
from redis.typing import EncodableT, FieldT
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fnhub import audit
from fnhub.config import Settings
from fnhub.functions import FunctionInfo
from fnhub.keys import Keys
from fnhub.revisions import bump, bump_past
from fnhub.scripts.inspect import ScriptError
from fnhub.scripts.languages import LANGUAGES, PYTHON
from fnhub.scripts.validate import inspect_all
from fnhub.store.db import Database
from fnhub.store.models import Script, ScriptVersion


def code_hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Published:
    script: str
    version: int
    hash: str
    changed: bool
    functions: list[FunctionInfo]
    language: str = PYTHON


class ScriptStore:
    def __init__(
        self, db: Database, client: redis.Redis, keys: Keys, settings: Settings | None = None
    ) -> None:
        self.db = db
        self.redis = client
        self.keys = keys
        self.settings = settings  # where Node and the project's npm packages are

    def active_code(self) -> dict[str, tuple[str, str, str]]:
        """name → (code, hash, language) of every active version."""
        with self.db.session() as session:
            rows = session.execute(
                select(
                    ScriptVersion.script,
                    ScriptVersion.code,
                    ScriptVersion.hash,
                    ScriptVersion.language,
                ).join(
                    Script,
                    (Script.name == ScriptVersion.script)
                    & (Script.active_version == ScriptVersion.version),
                )
            )
            return {name: (code, hash_, language) for name, code, hash_, language in rows}

    def publish(
        self,
        scripts: dict[str, str],
        *,
        languages: Mapping[str, str] | None = None,
        provisioned: bool = False,
        actor: str = audit.SYSTEM,
    ) -> list[Published]:
        """Publish new versions of the scripts whose code (or language) changed; unchanged ones
        are kept. `languages` names each script's language; a script it leaves out keeps its
        active version's language (Python for a new one)."""
        active = self.active_code()
        language = {
            name: (languages or {}).get(name) or active.get(name, ("", "", PYTHON))[2]
            for name in scripts
        }
        for name, lang in language.items():
            if lang not in LANGUAGES:
                raise ScriptError(
                    name, f"unknown language '{lang}' (one of {', '.join(LANGUAGES)})"
                )
        changed = {
            n: c
            for n, c in scripts.items()
            if active.get(n, ("", "", ""))[1:] != (code_hash(c), language[n])
        }
        described = self._inspect(changed, language, active) if changed else {}
        published: list[Published] = []
        with self.db.session() as session, session.begin():
            for name, code in scripts.items():
                if name not in changed:
                    version = session.get(Script, name)
                    assert version is not None
                    row = session.execute(
                        select(ScriptVersion).where(
                            ScriptVersion.script == name,
                            ScriptVersion.version == version.active_version,
                        )
                    ).scalar_one()
                    functions = [msgspec.convert(f, FunctionInfo) for f in row.functions]
                    published.append(
                        Published(name, row.version, row.hash, False, functions, row.language)
                    )
                    continue
                latest = session.execute(
                    select(func.max(ScriptVersion.version)).where(ScriptVersion.script == name)
                ).scalar()
                number = (latest or 0) + 1
                hash_ = code_hash(code)
                functions = described[name]
                session.add(
                    ScriptVersion(
                        script=name,
                        version=number,
                        hash=hash_,
                        code=code,
                        functions=[msgspec.to_builtins(f) for f in functions],
                        language=language[name],
                    )
                )
                before = self._point(session, name, number, hash_, provisioned)
                audit.record(
                    session,
                    actor,
                    "script.publish",
                    f"script:{name}",
                    before,
                    {"version": number, "hash": hash_, "functions": [f.name for f in functions]},
                )
                published.append(Published(name, number, hash_, True, functions, language[name]))
        if changed:
            self.sync_redis()
        else:  # `fnhub apply` puts back a mirror Redis lost, servers or not
            self.restore_mirror()
        return published

    def _inspect(
        self,
        changed: dict[str, str],
        language: dict[str, str],
        active: dict[str, tuple[str, str, str]],
    ) -> dict[str, list[FunctionInfo]]:
        node_path = modules_dir = None
        if self.settings is not None:
            from fnhub.node.packages import installed_modules

            node_path = self.settings.node_path
            modules_dir = installed_modules(self.settings, self.redis, self.keys)
        return inspect_all(changed, language, active, node_path=node_path, modules_dir=modules_dir)

    def _point(
        self, session: Session, name: str, version: int, hash_: str, provisioned: bool
    ) -> dict[str, object] | None:
        """Make `version` the active one; returns what was active before (for the audit log)."""
        script = session.get(Script, name)
        before = _active_state(script)
        if script is None:
            session.add(
                Script(
                    name=name,
                    active_version=version,
                    active_hash=hash_,
                    provisioned=provisioned,
                    updated_at=time.time(),
                )
            )
        else:
            script.active_version = version
            script.active_hash = hash_
            script.provisioned = provisioned
            script.updated_at = time.time()
        return before

    def rollback(self, name: str, version: int, *, actor: str = audit.SYSTEM) -> Published:
        """Make an earlier version active again (itself immutable, so this is just a pointer)."""
        with self.db.session() as session, session.begin():
            row = session.execute(
                select(ScriptVersion).where(
                    ScriptVersion.script == name, ScriptVersion.version == version
                )
            ).scalar_one_or_none()
            if row is None:
                raise ScriptError(name, f"has no version {version}")
            before = self._point(session, name, version, row.hash, False)
            audit.record(
                session,
                actor,
                "script.rollback",
                f"script:{name}",
                before,
                {"version": version, "hash": row.hash},
            )
            functions = [msgspec.convert(f, FunctionInfo) for f in row.functions]
            language = row.language
        self.sync_redis()
        return Published(name, version, row.hash, True, functions, language)

    def delete(self, name: str, *, actor: str = audit.SYSTEM) -> bool:
        """Deactivate a script (its versions stay for the records)."""
        with self.db.session() as session, session.begin():
            script = session.get(Script, name)
            if script is None:
                return False
            audit.record(session, actor, "script.delete", f"script:{name}", _active_state(script))
            session.delete(script)
        self.sync_redis()
        return True

    def provisioned_names(self) -> set[str]:
        """Scripts whose active version came from the project folder (apply, serve)."""
        with self.db.session() as session:
            return set(
                session.execute(select(Script.name).where(Script.provisioned.is_(True))).scalars()
            )

    def versions(self, name: str) -> list[ScriptVersion]:
        with self.db.session() as session:
            return list(
                session.execute(
                    select(ScriptVersion)
                    .where(ScriptVersion.script == name)
                    .order_by(ScriptVersion.version.desc())
                ).scalars()
            )

    def sync_redis(self) -> None:
        """Mirror the active versions into Redis (after every change, and at `fnhub serve`'s
        start). A mirror whose marker is gone (Redis lost it) gets its revision moved past
        what caches hold (`bump_past`), so none keeps contents of a revision number reused."""
        rows = self._active_rows()
        lost = not self.redis.exists(self.keys.scripts_mirrored)
        pipe = self.redis.pipeline(transaction=True)
        self._queue_mirror(pipe, rows, lost=lost)
        pipe.execute()

    def restore_mirror(self) -> Restored | None:
        """Mirror the active versions again if Redis lost the mirror (its marker is gone), else
        None. Never over a newer mirror: the marker is watched from before it is looked at until
        the write, so a publish that mirrors meanwhile (after its own commit, read later than
        ours) makes this write give way."""
        if self.redis.exists(self.keys.scripts_mirrored):
            return None  # the common case, without reading the database
        rows = self._active_rows()
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.watch(self.keys.scripts_mirrored)
            if pipe.exists(self.keys.scripts_mirrored):
                return None
            found = bool(pipe.exists(self.keys.scripts))  # a mirror from before the marker
            pipe.multi()
            self._queue_mirror(pipe, rows, lost=True)
            try:
                pipe.execute()
            except redis.WatchError:
                return None
        return Restored(sorted(row.script for row in rows), mirror_was_there=found)

    def _active_rows(self) -> list[ScriptVersion]:
        with self.db.session() as session:
            return list(
                session.execute(
                    select(ScriptVersion).join(
                        Script,
                        (Script.name == ScriptVersion.script)
                        & (Script.active_version == ScriptVersion.version),
                    )
                ).scalars()
            )

    def _queue_mirror(self, pipe: Pipeline, rows: list[ScriptVersion], *, lost: bool) -> None:
        """Queue on `pipe` (a MULTI) the whole mirror of `rows`, its marker and revision."""
        entries: dict[FieldT, EncodableT] = {
            row.script: msgspec.json.encode(
                {
                    "version": row.version,
                    "hash": row.hash,
                    "functions": row.functions,
                    "language": row.language,
                }
            )
            for row in rows
        }
        pipe.delete(self.keys.scripts)
        if entries:
            pipe.hset(self.keys.scripts, mapping=entries)
        for row in rows:
            pipe.set(self.keys.script_code(row.script, row.hash), row.code)
        pipe.set(self.keys.scripts_mirrored, f"{time.time():.3f}")  # when: for people, tests
        (bump_past if lost else bump)(pipe, self.keys.scripts_revision)


@dataclass(frozen=True, slots=True)
class Restored:
    """What `restore_mirror` wrote: the active scripts; `mirror_was_there`: the scripts hash
    was in Redis, without the marker (a Redis mirrored by a version before the marker)."""

    scripts: list[str]
    mirror_was_there: bool


def _active_state(script: Script | None) -> dict[str, object] | None:
    if script is None:
        return None
    return {"version": script.active_version, "hash": script.active_hash}
