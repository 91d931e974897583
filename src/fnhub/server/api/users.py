"""Console users (admins only): list, create, change role / password / disabled, remove."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, Field

from fnhub.accounts import users
from fnhub.accounts.models import User
from fnhub.accounts.roles import ROLE_PATTERN, Role
from fnhub.accounts.users import USERNAME_PATTERN, UserError
from fnhub.server.access import actor, needs
from fnhub.server.api.paging import ListPage, PageRequest, fetch_page, page_request
from fnhub.server.context import context_of
from fnhub.server.errors import ApiError, responses
from fnhub.server.schemas import Deleted, Strict

router = APIRouter(tags=["users"], dependencies=[Depends(needs(Role.ADMIN))])
Username = Path(pattern=USERNAME_PATTERN)
_STATUS = {"invalid": 422, "not_found": 404, "conflict": 409, "last_admin": 409}


class UserIn(Strict):
    username: str = Field(pattern=USERNAME_PATTERN)
    password: str = Field(min_length=8, max_length=1024)
    role: str = Field(pattern=ROLE_PATTERN)


class UserPatch(Strict):
    role: str | None = Field(None, pattern=ROLE_PATTERN)
    password: str | None = Field(None, min_length=8, max_length=1024)
    disabled: bool | None = None


class UserOut(BaseModel):
    username: str
    role: str
    disabled: bool
    created_at: float
    updated_at: float


def _error(exc: UserError) -> ApiError:
    code = "unknown_user" if exc.kind == "not_found" else exc.kind
    return ApiError(_STATUS.get(exc.kind, 422), code, str(exc))


@router.get("/users", response_model=ListPage[UserOut], responses=responses(401, 403, 422))
async def list_users(request: Request, page: PageRequest = Depends(page_request)) -> dict[str, Any]:
    """Users by name, a page at a time."""
    db = context_of(request).db
    rows, meta = await asyncio.to_thread(fetch_page, db, [User.username], page)
    return {"items": [users.user_json(r) for r in rows], **meta}


@router.post(
    "/users", status_code=201, response_model=UserOut, responses=responses(401, 403, 409, 422)
)
async def create_user(request: Request, body: UserIn) -> dict[str, Any]:
    try:
        row = await asyncio.to_thread(
            users.create_user,
            context_of(request).db,
            body.username,
            body.password,
            body.role,
            actor=actor(request),
        )
    except UserError as exc:
        raise _error(exc) from None
    return users.user_json(row)


@router.patch(
    "/users/{username}", response_model=UserOut, responses=responses(401, 403, 404, 409, 422)
)
async def update_user(
    request: Request, body: UserPatch, username: str = Username
) -> dict[str, Any]:
    """Change role, password or disabled; a new password or a disable ends the user's sessions
    (but not the session making the change). The last enabled admin stays one (409)."""
    principal = request.state.principal
    own = principal.session is not None and principal.name == username
    keep = principal.session.session_id if own else None
    try:
        row = await asyncio.to_thread(
            users.update_user,
            context_of(request).db,
            username,
            actor=principal.actor,
            role=body.role,
            password=body.password,
            disabled=body.disabled,
            keep_session=keep,
        )
    except UserError as exc:
        raise _error(exc) from None
    return users.user_json(row)


@router.delete("/users/{username}", response_model=Deleted, responses=responses(401, 403, 404, 409))
async def remove_user(request: Request, username: str = Username) -> dict[str, bool]:
    try:
        await asyncio.to_thread(
            users.remove_user, context_of(request).db, username, actor=actor(request)
        )
    except UserError as exc:
        raise _error(exc) from None
    return {"deleted": True}
