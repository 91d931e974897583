"""Who may call an `/api/v1` route: authentication, CSRF and roles in one dependency.

`authorize` is the dependency of the whole `/api/v1` router (the server's and the areas'
routes), so a route added anywhere under it is covered without doing anything. It accepts an
API key (`Authorization: Bearer` or `X-Api-Key`) or the session cookie; with the cookie, a
state-changing request (anything but GET/HEAD/OPTIONS) must also carry `X-CSRF-Token`.

The role a route needs is decided by its HTTP method: reading (GET, HEAD) needs `viewer`,
anything else `developer`. Two explicit overrides exist and nothing else:

- a router that only admins may use at all (users, keys, audit) adds
  `dependencies=[Depends(needs(Role.ADMIN))]`, which can only raise the bar;
- a route that needs another role than its method says declares it: one whose method says
  write but which only reads (a search sent as POST) `openapi_extra=role(Role.VIEWER)`, one
  only admins may use on a router open to others (env variables' writes)
  `openapi_extra=role(Role.ADMIN)`; the declared role replaces the method's, and shows in the
  OpenAPI document as `x-fnhub-role`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from fastapi import Depends, Request
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials

from fnhub import audit
from fnhub.accounts.roles import Role
from fnhub.accounts.sessions import COOKIE, SignedIn, csrf_ok, csrf_token
from fnhub.server.auth import AdminAuth, api_key_header, bearer, unauthorized
from fnhub.server.errors import ApiError
from fnhub.server.state import state_of

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
ROLE_EXTRA = "x-fnhub-role"
CSRF_HEADER = "x-csrf-token"

session_cookie = APIKeyCookie(
    name=COOKIE, auto_error=False, description="the console's session (sign in at /session)"
)


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller of a request: a signed-in user or an API key, with its role."""

    kind: Literal["user", "key"]
    name: str  # username or key id
    role: Role
    key_name: str = ""
    session: SignedIn | None = None

    @property
    def actor(self) -> str:
        return audit.user_actor(self.name) if self.kind == "user" else audit.key_actor(self.name)

    def json(self) -> dict[str, Any]:
        """The body of `GET /me` (and of `GET /session` for a user)."""
        if self.kind == "key":
            who: dict[str, Any] = {"key": {"id": self.name, "name": self.key_name}}
        else:
            who = {"user": {"username": self.name, "role": self.role.value}}
            if self.session is not None:
                who["csrf_token"] = csrf_token(self.session.session_id)
        return {**who, "role": self.role.value}


def role(needed: Role) -> dict[str, Any]:
    """`openapi_extra` for a route that needs another role than its method says."""
    return {ROLE_EXTRA: needed.value}


def required_role(request: Request) -> Role:
    return route_role(request.scope.get("route"), request.method)


def route_role(route: object, method: str) -> Role:
    """The role `method` on `route` needs (also `server.fast_call`'s, before any routing)."""
    declared = (getattr(route, "openapi_extra", None) or {}).get(ROLE_EXTRA)
    if declared:
        return Role(declared)
    return Role.VIEWER if method in SAFE_METHODS else Role.DEVELOPER


def forbidden(needed: Role, principal: Principal) -> ApiError:
    return ApiError(
        403,
        "forbidden",
        f"this needs the {needed.value} role; {principal.kind} '{principal.name}' is "
        f"{principal.role.value}",
    )


async def session_principal(request: Request, cookie: str | None) -> Principal:
    """The signed-in user of the session cookie; 401 when there is none or it ended."""
    signed_in = await asyncio.to_thread(state_of(request).signin.sessions.lookup, cookie)
    if signed_in is None:
        raise unauthorized("not signed in (or the session ended)")
    return Principal("user", signed_in.username, Role(signed_in.role), session=signed_in)


def check_csrf(request: Request, principal: Principal) -> None:
    """403 `csrf` for a state-changing cookie request without this session's token."""
    if principal.session is None or request.method in SAFE_METHODS:
        return
    if not csrf_ok(principal.session.session_id, request.headers.get(CSRF_HEADER)):
        raise ApiError(403, "csrf", "missing or wrong X-CSRF-Token header for this session")


async def authorize(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
    x_api_key: str | None = Depends(api_key_header),
    cookie: str | None = Depends(session_cookie),
) -> Principal:
    """Dependency of every `/api/v1` route: the caller, allowed to do what the route does."""
    token = credentials.credentials if credentials is not None else x_api_key
    if token is not None or cookie is None:
        keys: AdminAuth = state_of(request).admin_auth
        key = await keys.verify(token)
        principal = Principal("key", key.id, key.role, key_name=key.name)
    else:
        principal = await session_principal(request, cookie)
        check_csrf(request, principal)
    needed = required_role(request)
    if not principal.role.allows(needed):
        raise forbidden(needed, principal)
    request.state.principal = principal
    return principal


def needs(needed: Role) -> Callable[[Request], Awaitable[None]]:
    """A router dependency raising the role every one of its routes needs."""

    async def check(request: Request) -> None:
        principal: Principal = request.state.principal
        if not principal.role.allows(needed):
            raise forbidden(needed, principal)

    return check


def actor(request: Request) -> str:
    """The audit actor of an authorized request (`user:<name>` or `key:<id>`); `system` for a
    router mounted without `authorize` (an area's tests on a bare app)."""
    principal: Principal | None = getattr(request.state, "principal", None)
    return principal.actor if principal is not None else audit.SYSTEM


async def current_actor(request: Request) -> str:
    """`actor` as a dependency (async, so FastAPI does not hand it to a thread)."""
    return actor(request)
