"""Script drafts: save code without publishing it, read it back, throw it away, publish it.

Drafts are the console editor's memory: saving one never validates or runs anything. Publishing
from a draft goes through the same path as `PUT /scripts/{name}`; the draft goes only when its
code was published, so a refused publish leaves it where it was.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from fnhub.scripts.inspect import check_name
from fnhub.server.access import actor
from fnhub.server.api.scripts import DraftOut, Name, drafts_of, publish_code
from fnhub.server.errors import ApiError, responses
from fnhub.server.schemas import SQL_INT_MAX, Deleted, ScriptOut, Strict

router = APIRouter(tags=["scripts"])
CODE_MAX_CHARS = 5_000_000


class DraftIn(Strict):
    code: str = Field(max_length=CODE_MAX_CHARS, description="saved as it is, not validated")
    base_version: int | None = Field(
        None,
        ge=1,
        le=SQL_INT_MAX,
        description="the active version the edit started from (default: kept, or now)",
    )


class DraftPublishIn(Strict):
    code: str | None = Field(
        None, min_length=1, max_length=CODE_MAX_CHARS, description="save as the draft, then publish"
    )


class DraftSummary(BaseModel):
    script: str
    base_version: int | None
    author: str
    updated_at: float
    bytes: int


def _no_draft(name: str) -> ApiError:
    return ApiError(404, "no_draft", f"script '{name}' has no draft")


@router.get("/drafts", response_model=list[DraftSummary], responses=responses(401))
async def list_drafts(request: Request) -> list[dict[str, Any]]:
    """Every draft, newest first, without its code."""
    return await asyncio.to_thread(drafts_of(request).list)


@router.get("/scripts/{name}/draft", response_model=DraftOut, responses=responses(401, 404))
async def get_draft(request: Request, name: str = Name) -> dict[str, Any]:
    draft = await asyncio.to_thread(drafts_of(request).get, name)
    if draft is None:
        raise _no_draft(name)
    return draft.public()


@router.put(
    "/scripts/{name}/draft", response_model=DraftOut, responses=responses(400, 401, 413, 422)
)
async def save_draft(request: Request, body: DraftIn, name: str = Name) -> dict[str, Any]:
    """Save the script's draft (replacing it), without validating or publishing; the script
    need not exist yet."""
    problem = check_name(name)
    if problem is not None:
        raise ApiError(422, "invalid_script_name", problem)
    draft = await asyncio.to_thread(
        drafts_of(request).save,
        name,
        body.code,
        author=actor(request),
        base_version=body.base_version,
    )
    return draft.public()


@router.delete("/scripts/{name}/draft", response_model=Deleted, responses=responses(401, 404))
async def delete_draft(request: Request, name: str = Name) -> dict[str, bool]:
    if not await asyncio.to_thread(drafts_of(request).delete, name, actor=actor(request)):
        raise _no_draft(name)
    return {"deleted": True}


@router.post(
    "/scripts/{name}/draft/publish",
    response_model=ScriptOut,
    responses=responses(400, 401, 404, 413, 422),
)
async def publish_draft(
    request: Request, body: DraftPublishIn | None = None, name: str = Name
) -> dict[str, Any]:
    """Publish the draft (with `code`: save that as the draft first). Success deletes the
    draft unless it changed meanwhile; a refused publish (422 `invalid_script`, with where)
    keeps it."""
    drafts = drafts_of(request)
    if body is not None and body.code is not None:
        problem = check_name(name)
        if problem is not None:
            raise ApiError(422, "invalid_script_name", problem)
        await asyncio.to_thread(drafts.save, name, body.code, author=actor(request))
        code = body.code
    else:
        draft = await asyncio.to_thread(drafts.get, name)
        if draft is None:
            raise _no_draft(name)
        code = draft.code
    if not code:
        raise ApiError(422, "invalid_script", f"{name}: the draft is empty", script=name)
    return await publish_code(request, name, code)
