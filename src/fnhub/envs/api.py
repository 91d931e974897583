"""`/api/v1/envs`: env variables over HTTP, and the server's purge of expired store rows.

Anyone with a key reads them (a password shows as `*****`, always); only admins change them.
Changes go through `envs.repo` (checked, sealed, audited) and reach workers through the envs
revision.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, Field

from fnhub.accounts.roles import Role
from fnhub.envs import repo
from fnhub.envs.kv import purge_expired
from fnhub.envs.models import EnvVar
from fnhub.envs.values import NAME_PATTERN, InvalidEnv
from fnhub.revisions import bump
from fnhub.secret_box import SecretBox, resolve_secret_key
from fnhub.server.access import current_actor, role
from fnhub.server.api.paging import ListPage, PageRequest, fetch_page, page_request
from fnhub.server.context import Ctx, ServerContext
from fnhub.server.errors import DATABASE_UNAVAILABLE, ApiError, responses
from fnhub.server.schemas import Deleted, Strict

log = logging.getLogger(__name__)
router = APIRouter(tags=["envs"])
Name = Path(pattern=NAME_PATTERN)
Actor = Annotated[str, Depends(current_actor)]
#: seconds between two purges of expired store rows, per server
PURGE_SECONDS = 60.0

JsonValue = str | int | float | bool | list[Any] | dict[str, Any]


class EnvIn(Strict):
    type: str = Field("string", description="string, password, integer, float, boolean, json, list")
    value: JsonValue = Field(
        description="the value as text (`*****` keeps a stored password); json and list "
        "also take a JSON value, integer, float and boolean a JSON scalar"
    )
    description: str = Field("", max_length=2000)


class EnvOut(BaseModel):
    name: str
    type: str
    value: str = Field(description="as stored; `*****` for a password")
    description: str
    provisioned: bool = Field(description="declared in fnhub.yaml")
    created_at: float
    updated_at: float
    updated_by: str = Field(description="who changed it last: user:<name>, key:<id>, cli, project")


@functools.cache
def _box(secret_key: str) -> SecretBox:
    return SecretBox(secret_key)


def box_of(ctx: ServerContext) -> SecretBox:
    return _box(resolve_secret_key(ctx.settings))


@router.get("/envs", response_model=ListPage[EnvOut], responses=responses(401, 422))
async def list_envs(ctx: Ctx, page: PageRequest = Depends(page_request)) -> dict[str, Any]:
    """Env variables by name, a page at a time; passwords as `*****`."""
    rows, meta = await asyncio.to_thread(fetch_page, ctx.db, [EnvVar.name], page)
    return {"items": [repo.env_out(r) for r in rows], **meta}


def _get(ctx: ServerContext, name: str) -> EnvVar:
    with ctx.db.session() as session:
        row = session.get(EnvVar, name)
    if row is None:
        raise ApiError(404, "unknown_env", f"no env variable '{name}'")
    return row


@router.get("/envs/{name}", response_model=EnvOut, responses=responses(401, 404))
async def get_env(ctx: Ctx, name: str = Name) -> dict[str, Any]:
    return repo.env_out(await asyncio.to_thread(_get, ctx, name))


@router.put(
    "/envs/{name}",
    response_model=EnvOut,
    responses=responses(401, 403, 422),
    openapi_extra=role(Role.ADMIN),
)
async def put_env(ctx: Ctx, body: EnvIn, who: Actor, name: str = Name) -> dict[str, Any]:
    """Create or replace an env variable (admins). A value its type cannot read is refused
    with the reason (422 `invalid_env`)."""
    try:
        spec = repo.spec_of(body.type, body.value, body.description)
    except InvalidEnv as exc:
        raise ApiError(422, "invalid_env", str(exc)) from None
    box = box_of(ctx)

    def save() -> EnvVar:
        with ctx.db.session() as session, session.begin():
            row, _change = repo.save_env(session, box, name, spec, actor=who)
            return row

    try:
        row = await asyncio.to_thread(save)
    except InvalidEnv as exc:
        raise ApiError(422, "invalid_env", str(exc)) from None
    await bump(ctx.redis, ctx.keys.envs_revision)
    return repo.env_out(row)


@router.delete(
    "/envs/{name}",
    response_model=Deleted,
    responses=responses(401, 403, 404),
    openapi_extra=role(Role.ADMIN),
)
async def delete_env(ctx: Ctx, who: Actor, name: str = Name) -> dict[str, bool]:
    def remove() -> bool:
        with ctx.db.session() as session, session.begin():
            return repo.delete_env(session, name, actor=who)

    if not await asyncio.to_thread(remove):
        raise ApiError(404, "unknown_env", f"no env variable '{name}'")
    await bump(ctx.redis, ctx.keys.envs_revision)
    return {"deleted": True}


async def purge_service(ctx: ServerContext) -> None:
    """Delete expired `fnhub.store` rows every minute (reads already ignore them). Every
    server does it; deleting what another server deleted costs nothing."""
    while True:
        try:
            purged = await asyncio.to_thread(purge_expired, ctx.db)
            if purged:
                log.debug("purged %d expired store row(s)", purged)
        except DATABASE_UNAVAILABLE as exc:  # next time; anything else: `supervised` restarts us
            log.warning("cannot purge expired store rows: %s", exc)
        await asyncio.sleep(PURGE_SECONDS)
