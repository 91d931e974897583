"""API keys: `fnh_<id>_<secret>` tokens of which only the SHA-256 is stored, each with a role.

Requests authenticate with `Authorization: Bearer <token>` or `X-Api-Key: <token>`. A verified
token is remembered in memory for a few seconds, so the hot path does not query the database
per request; revoking through this server forgets it at once, elsewhere within `CACHE_SECONDS`.
Concurrent requests with a token not remembered share one lookup (a restarted server's first
burst made one query per request, all for the same key); a failed lookup is never remembered.
Keys made before roles existed are admins (the column's default).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from fastapi.security import APIKeyHeader, HTTPBearer
from sqlalchemy import select

from fnhub import audit
from fnhub.accounts.roles import Role
from fnhub.server.errors import ApiError
from fnhub.server.models import ApiKey
from fnhub.store.db import Database

PREFIX = "fnh_"
CACHE_SECONDS = 5.0

bearer = HTTPBearer(auto_error=False, description="an API key")
api_key_header = APIKeyHeader(name="X-Api-Key", auto_error=False, description="an API key")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def key_state(row: ApiKey) -> dict[str, object]:
    """What the API and the audit log show of a key (never its hash)."""
    return {
        "id": row.id,
        "name": row.name,
        "role": row.role,
        "created_at": row.created_at,
        "expires_at": row.expires_at,
    }


def create_key(
    db: Database,
    name: str = "",
    expires_at: float | None = None,
    role: str = Role.ADMIN,
    *,
    actor: str = audit.SYSTEM,
) -> tuple[ApiKey, str]:
    """Store a new key; returns the row and the token (which is not kept anywhere)."""
    key_id = secrets.token_hex(4)
    token = f"{PREFIX}{key_id}_{secrets.token_urlsafe(24)}"
    row = ApiKey(
        id=key_id,
        name=name,
        role=Role(role).value,
        token_hash=hash_token(token),
        created_at=time.time(),
        expires_at=expires_at,
    )
    with db.session() as session, session.begin():
        session.add(row)
        audit.record(session, actor, "key.create", f"key:{key_id}", None, key_state(row))
    return row, token


def list_keys(db: Database) -> list[ApiKey]:
    with db.session() as session:
        return list(session.execute(select(ApiKey).order_by(ApiKey.created_at)).scalars())


def revoke_key(db: Database, key_id: str, *, actor: str = audit.SYSTEM) -> bool:
    with db.session() as session, session.begin():
        row = session.get(ApiKey, key_id)
        if row is None:
            return False
        audit.record(session, actor, "key.revoke", f"key:{key_id}", key_state(row), None)
        session.delete(row)
        return True


def _lookup(db: Database, token_hash: str) -> ApiKey | None:
    with db.session() as session:
        return session.execute(
            select(ApiKey).where(ApiKey.token_hash == token_hash)
        ).scalar_one_or_none()


@dataclass(frozen=True, slots=True)
class VerifiedKey:
    id: str
    name: str
    role: Role


class AdminAuth:
    """Verifies API keys (with a short per-server cache and one lookup per token at a time)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._verified: dict[str, tuple[float, VerifiedKey]] = {}  # hash → (valid until, key)
        self._lookups: dict[str, asyncio.Task[ApiKey | None]] = {}  # hash → the lookup running
        self._generation = 0  # moved by `forget`: a lookup begun before it remembers nothing

    def forget(self, key_id: str | None = None) -> None:
        self._verified = {
            h: v for h, v in self._verified.items() if key_id is not None and v[1].id != key_id
        }
        # a lookup running now may have read the key before its revocation: requests from now
        # on start their own, and what it read is not remembered
        self._generation += 1
        self._lookups.clear()

    async def _shared_lookup(self, token_hash: str) -> ApiKey | None:
        """The row of `token_hash`, from the one lookup running for it (started if none is).

        The lookup is a task of its own, so a caller that goes away (a client disconnecting)
        does not cancel it for the others; each caller gets its row or its error."""
        lookup = self._lookups.get(token_hash)
        if lookup is None:
            lookup = asyncio.create_task(asyncio.to_thread(_lookup, self.db, token_hash))
            self._lookups[token_hash] = lookup
            lookup.add_done_callback(functools.partial(self._lookup_done, token_hash))
        return await asyncio.shield(lookup)

    def _lookup_done(self, token_hash: str, lookup: asyncio.Task[ApiKey | None]) -> None:
        if self._lookups.get(token_hash) is lookup:
            del self._lookups[token_hash]  # the next request after a failure looks it up again
        if not lookup.cancelled():
            lookup.exception()  # retrieved: its callers were told, or all went away

    async def verify(self, token: str | None) -> VerifiedKey:
        """The key of a valid token; ApiError 401 (saying nothing more) otherwise."""
        if not token or not token.startswith(PREFIX) or len(token) > 200:
            raise unauthorized()
        token_hash = hash_token(token)
        now = time.time()
        cached = self._verified.get(token_hash)
        if cached is not None and cached[0] > now:
            return cached[1]
        generation = self._generation
        row = await self._shared_lookup(token_hash)
        now = time.time()
        if (
            row is None
            or not hmac.compare_digest(row.token_hash, token_hash)
            or (row.expires_at is not None and row.expires_at <= now)
        ):
            self._verified.pop(token_hash, None)
            raise unauthorized()
        until = now + CACHE_SECONDS
        if row.expires_at is not None:
            until = min(until, row.expires_at)
        key = VerifiedKey(row.id, row.name, Role(row.role))
        if generation == self._generation:  # no `forget` while it was looked up
            self._verified[token_hash] = (until, key)
        return key


def unauthorized(message: str = "a valid API key or session is required") -> ApiError:
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})
