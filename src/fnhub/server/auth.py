"""Admin API keys: `fnh_<id>_<secret>` tokens of which only the SHA-256 is stored.

Requests authenticate with `Authorization: Bearer <token>` or `X-Api-Key: <token>`. A verified
token is remembered in memory for a few seconds, so the hot path does not query the database
per request; revoking through this server forgets it at once, elsewhere within `CACHE_SECONDS`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import delete, select

from fnhub.server.errors import ApiError
from fnhub.server.models import ApiKey
from fnhub.store.db import Database

PREFIX = "fnh_"
CACHE_SECONDS = 5.0

bearer = HTTPBearer(auto_error=False, description="an admin API key")
api_key_header = APIKeyHeader(name="X-Api-Key", auto_error=False, description="an admin API key")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_key(db: Database, name: str = "", expires_at: float | None = None) -> tuple[ApiKey, str]:
    """Store a new key; returns the row and the token (which is not kept anywhere)."""
    key_id = secrets.token_hex(4)
    token = f"{PREFIX}{key_id}_{secrets.token_urlsafe(24)}"
    row = ApiKey(
        id=key_id,
        name=name,
        token_hash=hash_token(token),
        created_at=time.time(),
        expires_at=expires_at,
    )
    with db.session() as session, session.begin():
        session.add(row)
    return row, token


def list_keys(db: Database) -> list[ApiKey]:
    with db.session() as session:
        return list(session.execute(select(ApiKey).order_by(ApiKey.created_at)).scalars())


def revoke_key(db: Database, key_id: str) -> bool:
    with db.session() as session, session.begin():
        return bool(session.execute(delete(ApiKey).where(ApiKey.id == key_id)).rowcount)


def _lookup(db: Database, token_hash: str) -> ApiKey | None:
    with db.session() as session:
        return session.execute(
            select(ApiKey).where(ApiKey.token_hash == token_hash)
        ).scalar_one_or_none()


class AdminAuth:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._verified: dict[str, tuple[float, str]] = {}  # hash → (valid until, key id)

    def forget(self, key_id: str | None = None) -> None:
        self._verified = {
            h: v for h, v in self._verified.items() if key_id is not None and v[1] != key_id
        }

    async def verify(self, token: str | None) -> str:
        """The key id of a valid token; ApiError 401 (saying nothing more) otherwise."""
        if not token or not token.startswith(PREFIX) or len(token) > 200:
            raise _unauthorized()
        token_hash = hash_token(token)
        now = time.time()
        cached = self._verified.get(token_hash)
        if cached is not None and cached[0] > now:
            return cached[1]
        row = await asyncio.to_thread(_lookup, self.db, token_hash)
        if (
            row is None
            or not hmac.compare_digest(row.token_hash, token_hash)
            or (row.expires_at is not None and row.expires_at <= now)
        ):
            self._verified.pop(token_hash, None)
            raise _unauthorized()
        until = now + CACHE_SECONDS
        if row.expires_at is not None:
            until = min(until, row.expires_at)
        self._verified[token_hash] = (until, row.id)
        return row.id


def _unauthorized() -> ApiError:
    return ApiError(
        401,
        "unauthorized",
        "a valid API key is required",
        headers={"WWW-Authenticate": "Bearer"},
    )


async def require_admin(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
    x_api_key: str | None = Depends(api_key_header),
) -> str:
    """Dependency of every admin route: the caller's API key id."""
    token = credentials.credentials if credentials is not None else x_api_key
    auth: AdminAuth = request.app.state.admin_auth
    return await auth.verify(token)
