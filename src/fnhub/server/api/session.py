"""Signing in and out of the console, and `GET /me` (who the caller is, for keys too).

`POST /session` is the one `/api/v1` route without authentication; `GET`/`DELETE /session`
work from the cookie alone. The cookie is HttpOnly, SameSite=Strict, Path=/, and Secure when
the request came over TLS (or `session_cookie_secure` is set).
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from fnhub.accounts.roles import Role
from fnhub.accounts.sessions import COOKIE, SignedIn
from fnhub.accounts.signin import SignIn, SignInRefused
from fnhub.server.access import Principal, check_csrf, session_cookie, session_principal
from fnhub.server.context import context_of
from fnhub.server.errors import ApiError, responses
from fnhub.server.render import json_response
from fnhub.server.schemas import Strict
from fnhub.server.state import state_of

public_router = APIRouter(tags=["session"])
router = APIRouter(tags=["session"])


class SessionIn(Strict):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class UserRef(BaseModel):
    username: str
    role: str


class KeyRef(BaseModel):
    id: str
    name: str


class SessionOut(BaseModel):
    user: UserRef
    role: str
    csrf_token: str = Field(description="send it as X-CSRF-Token with every change")


class MeOut(BaseModel):
    user: UserRef | None = None
    key: KeyRef | None = None
    role: str
    csrf_token: str | None = None


def _client(request: Request) -> str:
    return request.client.host if request.client else ""


def _secure(request: Request) -> bool:
    return request.url.scheme == "https" or context_of(request).settings.session_cookie_secure


@public_router.post("/session", response_model=SessionOut, responses=responses(401, 422, 429))
async def sign_in(
    request: Request, body: SessionIn, cookie: str | None = Depends(session_cookie)
) -> Response:
    """Sign in: a new session (any session of the cookie sent along ends) and its CSRF token."""
    signin: SignIn = state_of(request).signin
    try:
        user, session_id = await signin.sign_in(
            body.username, body.password, _client(request), cookie
        )
    except SignInRefused as exc:
        if exc.retry_after:
            raise ApiError(
                429,
                "throttled",
                "too many failed sign-ins; try again later",
                headers={"Retry-After": str(exc.retry_after)},
            ) from None
        raise ApiError(401, "unauthorized", "wrong username or password") from None
    signed_in = SignedIn(session_id, user.id, user.username, user.role)
    principal = Principal("user", user.username, Role(user.role), session=signed_in)
    response = json_response(principal.json())
    response.set_cookie(
        COOKIE,
        session_id,
        max_age=int(context_of(request).settings.session_max_seconds),
        path="/",
        secure=_secure(request),
        httponly=True,
        samesite="strict",
    )
    return response


@public_router.get("/session", response_model=SessionOut, responses=responses(401))
async def get_session(
    request: Request, cookie: str | None = Depends(session_cookie)
) -> dict[str, Any]:
    """The signed-in user and the session's CSRF token (401 when not signed in)."""
    return (await session_principal(request, cookie)).json()


@public_router.delete("/session", status_code=204, responses=responses(401, 403))
async def sign_out(request: Request, cookie: str | None = Depends(session_cookie)) -> Response:
    """Sign out (needs X-CSRF-Token): the session ends everywhere, the cookie is cleared."""
    principal = await session_principal(request, cookie)
    check_csrf(request, principal)
    assert principal.session is not None
    await asyncio.to_thread(state_of(request).signin.sessions.end, principal.session)
    response = Response(status_code=204)
    response.delete_cookie(
        COOKIE, path="/", secure=_secure(request), httponly=True, samesite="strict"
    )
    return response


@router.get("/me", response_model=MeOut, response_model_exclude_none=True, responses=responses(401))
async def me(request: Request) -> dict[str, Any]:
    """Who the caller is: `{"user": ..., "csrf_token"}` or `{"key": ...}`, with the role."""
    principal: Principal = request.state.principal
    return principal.json()
