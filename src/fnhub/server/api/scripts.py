"""Scripts: publish a new version, read one (active code and draft), list versions, read one
version, roll back, deactivate."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from fastapi import APIRouter, Path, Request
from pydantic import BaseModel
from sqlalchemy import select
from starlette.responses import Response

from fnhub.scripts.drafts import DraftStore
from fnhub.scripts.inspect import ScriptError
from fnhub.scripts.store import ScriptStore
from fnhub.server.access import actor
from fnhub.server.context import caller_of, context_of
from fnhub.server.errors import ApiError, responses
from fnhub.server.revision_cache import cached_json
from fnhub.server.schemas import (
    SQL_INT_MAX,
    Deleted,
    RollbackIn,
    ScriptIn,
    ScriptOut,
    ScriptVersionOut,
)
from fnhub.server.state import state_of
from fnhub.store.models import Script, ScriptVersion

router = APIRouter(tags=["scripts"])
Name = Path(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
Version = Path(ge=1, le=SQL_INT_MAX)  # a version column is a 32-bit integer


class DraftOut(BaseModel):
    script: str
    code: str
    base_version: int | None
    author: str
    updated_at: float


class ActiveVersionOut(BaseModel):
    version: int
    hash: str
    functions: list[str]
    language: str
    code: str
    provisioned: bool
    updated_at: float


class ScriptDetail(BaseModel):
    name: str
    active: ActiveVersionOut | None
    draft: DraftOut | None


def _store(request: Request) -> ScriptStore:
    return state_of(request).scripts


def drafts_of(request: Request) -> DraftStore:
    return DraftStore(context_of(request).db)


def invalid_script(exc: ScriptError) -> ApiError:
    """422 with the message as it always was, plus where in the script it is (1-based line,
    column, end_line, end_column: those known), so an editor can mark the spot."""
    return ApiError(422, "invalid_script", str(exc), script=exc.script, **exc.position)


async def publish_code(
    request: Request, name: str, code: str, language: str | None = None
) -> dict[str, Any]:
    """Publish `code` as the script's next version (in `language`, else the active version's);
    a draft holding exactly this code is published with it, so it goes."""
    languages = {name: language} if language else None
    try:
        published = await asyncio.to_thread(
            _store(request).publish, {name: code}, languages=languages, actor=actor(request)
        )
    except ScriptError as exc:
        raise invalid_script(exc) from None
    await caller_of(request).refresh()
    p = published[0]
    await asyncio.to_thread(drafts_of(request).discard_published, name, p.hash)
    return {
        "name": p.script,
        "version": p.version,
        "hash": p.hash,
        "functions": [f.name for f in p.functions],
        "language": p.language,
    }


def _names(functions: list[Any]) -> list[str]:
    return [f["name"] if isinstance(f, dict) else f.name for f in functions]


def _list(store: ScriptStore) -> list[dict[str, Any]]:
    with store.db.session() as session:
        rows = session.execute(
            select(
                Script.name,
                Script.provisioned,
                Script.updated_at,
                ScriptVersion.version,
                ScriptVersion.hash,
                ScriptVersion.functions,
                ScriptVersion.language,
            )
            .join(
                ScriptVersion,
                (Script.name == ScriptVersion.script)
                & (Script.active_version == ScriptVersion.version),
            )
            .order_by(Script.name)
        ).all()
    return [
        {
            "name": row.name,
            "version": row.version,
            "hash": row.hash,
            "functions": _names(row.functions),
            "language": row.language,
            "provisioned": row.provisioned,
            "updated_at": row.updated_at,
        }
        for row in rows
    ]


@router.get("/scripts", response_model=list[ScriptOut], responses=responses(401))
async def list_scripts(request: Request) -> Response:
    """The active version of every script (without code: `GET /scripts/{name}` has it)."""

    async def build() -> bytes:
        return orjson.dumps(await asyncio.to_thread(_list, _store(request)))

    return await cached_json(
        caller_of(request), state_of(request).revision_caches, "script_list", build
    )


@router.put("/scripts/{name}", response_model=ScriptOut, responses=responses(400, 401, 413, 422))
async def publish_script(request: Request, body: ScriptIn, name: str = Name) -> dict[str, Any]:
    """Publish `code` as the script's next version (unchanged code keeps its version); a broken
    script is refused with 422 (`line`, `column`... say where) and the active version stays.
    A draft holding exactly this code is deleted."""
    return await publish_code(request, name, body.code, body.language)


def _detail(store: ScriptStore, drafts: DraftStore, name: str) -> dict[str, Any] | None:
    with store.db.session() as session:
        row = session.execute(
            select(Script, ScriptVersion)
            .join(
                ScriptVersion,
                (Script.name == ScriptVersion.script)
                & (Script.active_version == ScriptVersion.version),
            )
            .where(Script.name == name)
        ).first()
    draft = drafts.get(name)
    if row is None and draft is None:
        return None
    active = None
    if row is not None:
        s, v = row
        active = {
            "version": v.version,
            "hash": v.hash,
            "functions": _names(v.functions),
            "language": v.language,
            "code": v.code,
            "provisioned": s.provisioned,
            "updated_at": s.updated_at,
        }
    return {"name": name, "active": active, "draft": None if draft is None else draft.public()}


@router.get("/scripts/{name}", response_model=ScriptDetail, responses=responses(401, 404))
async def get_script(request: Request, name: str = Name) -> dict[str, Any]:
    """The active version with its code, and the draft: what an editor opens. A script may
    have only a draft (`active` null)."""
    detail = await asyncio.to_thread(_detail, _store(request), drafts_of(request), name)
    if detail is None:
        raise ApiError(404, "unknown_script", f"no script '{name}' (and no draft of it)")
    return detail


_VERSION_COLUMNS = (
    ScriptVersion.script,
    ScriptVersion.version,
    ScriptVersion.hash,
    ScriptVersion.functions,
    ScriptVersion.language,
    ScriptVersion.created_at,
)


def _versions(store: ScriptStore, name: str, version: int | None = None) -> list[dict[str, Any]]:
    """The versions of a script newest first (or just `version`, with its code), without
    loading the code of every version."""
    columns = (*_VERSION_COLUMNS, ScriptVersion.code) if version is not None else _VERSION_COLUMNS
    query = select(*columns).where(ScriptVersion.script == name)
    if version is not None:
        query = query.where(ScriptVersion.version == version)
    with store.db.session() as session:
        active = session.execute(select(Script.active_version).where(Script.name == name)).scalar()
        rows = session.execute(query.order_by(ScriptVersion.version.desc())).all()
    versions = []
    for row in rows:
        item = {
            "script": row.script,
            "version": row.version,
            "hash": row.hash,
            "functions": _names(row.functions),
            "language": row.language,
            "created_at": row.created_at,
            "active": row.version == active,
        }
        if version is not None:
            item["code"] = row.code
        versions.append(item)
    return versions


@router.get(
    "/scripts/{name}/versions",
    response_model=list[ScriptVersionOut],
    responses=responses(401, 404),
)
async def list_versions(request: Request, name: str = Name) -> list[dict[str, Any]]:
    versions = await asyncio.to_thread(_versions, _store(request), name)
    if not versions:
        raise ApiError(404, "unknown_script", f"no script '{name}'")
    return versions


@router.get(
    "/scripts/{name}/versions/{version}",
    response_model=ScriptVersionOut,
    responses=responses(401, 404, 422),
)
async def get_version(request: Request, version: int = Version, name: str = Name) -> dict[str, Any]:
    """One version, with its code (the console diffs versions in the browser)."""
    found = await asyncio.to_thread(_versions, _store(request), name, version)
    if not found:
        raise ApiError(404, "unknown_version", f"script '{name}' has no version {version}")
    return found[0]


@router.post(
    "/scripts/{name}/rollback", response_model=ScriptOut, responses=responses(400, 401, 404, 422)
)
async def rollback_script(request: Request, body: RollbackIn, name: str = Name) -> dict[str, Any]:
    """Make an earlier version active again."""
    try:
        p = await asyncio.to_thread(
            _store(request).rollback, name, body.version, actor=actor(request)
        )
    except ScriptError as exc:
        raise ApiError(404, "unknown_version", str(exc)) from None
    await caller_of(request).refresh()
    return {
        "name": p.script,
        "version": p.version,
        "hash": p.hash,
        "functions": [f.name for f in p.functions],
        "language": p.language,
    }


@router.delete("/scripts/{name}", response_model=Deleted, responses=responses(401, 404))
async def delete_script(request: Request, name: str = Name) -> dict[str, bool]:
    """Deactivate a script; its versions stay for the task records."""
    if not await asyncio.to_thread(_store(request).delete, name, actor=actor(request)):
        raise ApiError(404, "unknown_script", f"no script '{name}'")
    await caller_of(request).refresh()
    return {"deleted": True}
