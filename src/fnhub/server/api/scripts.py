"""Scripts: publish a new version, list versions, read one, roll back, deactivate."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Path, Request
from sqlalchemy import select

from fnhub.scripts.inspect import ScriptError
from fnhub.scripts.store import ScriptStore
from fnhub.server.access import actor
from fnhub.server.errors import ApiError, responses
from fnhub.server.schemas import (
    SQL_INT_MAX,
    Deleted,
    RollbackIn,
    ScriptIn,
    ScriptOut,
    ScriptVersionOut,
)
from fnhub.store.models import Script, ScriptVersion

router = APIRouter(tags=["scripts"])
Name = Path(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


def _store(request: Request) -> ScriptStore:
    return request.app.state.scripts


def _names(functions: list[Any]) -> list[str]:
    return [f["name"] if isinstance(f, dict) else f.name for f in functions]


def _list(store: ScriptStore) -> list[dict[str, Any]]:
    with store.db.session() as session:
        rows = session.execute(
            select(Script, ScriptVersion)
            .join(
                ScriptVersion,
                (Script.name == ScriptVersion.script)
                & (Script.active_version == ScriptVersion.version),
            )
            .order_by(Script.name)
        ).all()
        return [
            {
                "name": s.name,
                "version": v.version,
                "hash": v.hash,
                "functions": _names(v.functions),
                "provisioned": s.provisioned,
                "updated_at": s.updated_at,
            }
            for s, v in rows
        ]


@router.get("/scripts", response_model=list[ScriptOut], responses=responses(401))
async def list_scripts(request: Request) -> list[dict[str, Any]]:
    """The active version of every script."""
    return await asyncio.to_thread(_list, _store(request))


@router.put("/scripts/{name}", response_model=ScriptOut, responses=responses(400, 401, 413, 422))
async def publish_script(request: Request, body: ScriptIn, name: str = Name) -> dict[str, Any]:
    """Publish `code` as the script's next version (unchanged code keeps its version); a broken
    script is refused with 422 (with `line` and `column` when the error has a place in the
    code) and the active version stays."""
    store = _store(request)
    try:
        published = await asyncio.to_thread(store.publish, {name: body.code}, actor=actor(request))
    except ScriptError as exc:
        raise ApiError(
            422, "invalid_script", str(exc), script=exc.script, line=exc.line, column=exc.column
        ) from None
    await request.app.state.caller.refresh()
    p = published[0]
    return {
        "name": p.script,
        "version": p.version,
        "hash": p.hash,
        "functions": [f.name for f in p.functions],
    }


def _versions(store: ScriptStore, name: str) -> list[dict[str, Any]]:
    with store.db.session() as session:
        script = session.get(Script, name)
    active = script.active_version if script else None
    return [
        {
            "script": v.script,
            "version": v.version,
            "hash": v.hash,
            "functions": _names(v.functions),
            "created_at": v.created_at,
            "active": v.version == active,
        }
        for v in store.versions(name)
    ]


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
    responses=responses(401, 404),
)
async def get_version(
    request: Request, version: int = Path(ge=1, le=SQL_INT_MAX), name: str = Name
) -> dict[str, Any]:
    """One version, with its code."""
    store = _store(request)
    versions = await asyncio.to_thread(_versions, store, name)
    for v in versions:
        if v["version"] == version:
            code = await asyncio.to_thread(store.code_of, name, v["hash"])
            return {**v, "code": code}
    raise ApiError(404, "unknown_version", f"script '{name}' has no version {version}")


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
    await request.app.state.caller.refresh()
    return {
        "name": p.script,
        "version": p.version,
        "hash": p.hash,
        "functions": [f.name for f in p.functions],
    }


@router.delete("/scripts/{name}", response_model=Deleted, responses=responses(401, 404))
async def delete_script(request: Request, name: str = Name) -> dict[str, bool]:
    """Deactivate a script; its versions stay for the task records."""
    if not await asyncio.to_thread(_store(request).delete, name, actor=actor(request)):
        raise ApiError(404, "unknown_script", f"no script '{name}'")
    await request.app.state.caller.refresh()
    return {"deleted": True}
