"""Signing in: throttling, one password check of constant cost, a new session.

Failures are counted in Redis per username and per client address over a sliding window
(`signin_window_seconds`); past `signin_user_failures` for the username or `signin_ip_failures`
for the address, every attempt is refused with 429 (the right password too) until enough of the
failures have left the window. An attempt is counted before its password is checked, so a burst
of parallel guesses cannot slip past the limit; a success takes its own count back and clears
the username's, but never the address's other failures. Password checks run in threads, two at a
time per server, since each costs tens of milliseconds of CPU and 64 MiB.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets

import redis.asyncio as aredis

from fnhub.accounts import passwords, users
from fnhub.accounts.models import User
from fnhub.accounts.sessions import SessionStore
from fnhub.config import Settings
from fnhub.keys import Keys
from fnhub.store.db import Database

CONCURRENT_CHECKS = 2

# KEYS: the username's and the address's failure sets. ARGV: window ms, the two limits, a member.
# Returns 0 (attempt counted) or the ms until an attempt would be allowed.
_ATTEMPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
local limits = {tonumber(ARGV[2]), tonumber(ARGV[3])}
local wait = 0
for i = 1, 2 do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - window)
  local n = redis.call('ZCARD', KEYS[i])
  if n >= limits[i] then
    local first = redis.call('ZRANGE', KEYS[i], n - limits[i], n - limits[i], 'WITHSCORES')
    local w = tonumber(first[2]) + window - now
    if w > wait then wait = w end
  end
end
if wait > 0 then return wait end
for i = 1, 2 do
  redis.call('ZADD', KEYS[i], now, ARGV[4])
  redis.call('PEXPIRE', KEYS[i], window)
end
return 0
"""


class SignInRefused(Exception):
    """Wrong credentials (`retry_after` None) or too many failures (seconds to wait)."""

    def __init__(self, retry_after: int | None = None) -> None:
        super().__init__("throttled" if retry_after else "wrong username or password")
        self.retry_after = retry_after


class SignIn:
    def __init__(self, db: Database, client: aredis.Redis, keys: Keys, settings: Settings) -> None:
        self.db = db
        self.redis = client
        self.keys = keys
        self.settings = settings
        self.sessions = SessionStore(
            db, settings.session_idle_seconds, settings.session_max_seconds
        )
        self._attempt = client.register_script(_ATTEMPT)
        self._checks = asyncio.Semaphore(CONCURRENT_CHECKS)

    def _keys(self, username: str, address: str) -> list[str]:
        who = hashlib.sha256(username.lower().encode()).hexdigest()[:32]
        return [self.keys.signin_failures("user", who), self.keys.signin_failures("ip", address)]

    async def sign_in(
        self, username: str, password: str, address: str, replacing: str | None
    ) -> tuple[User, str]:
        """The user and a new session id, or SignInRefused."""
        keys = self._keys(username, address)
        member = secrets.token_hex(8)
        s = self.settings
        wait_ms = await self._attempt(
            keys=keys,
            args=[
                int(s.signin_window_seconds * 1000),
                s.signin_user_failures,
                s.signin_ip_failures,
                member,
            ],
        )
        if int(wait_ms) > 0:
            raise SignInRefused(retry_after=max(1, -(-int(wait_ms) // 1000)))
        async with self._checks:
            user, ok = await asyncio.to_thread(self._check, username, password)
        if not ok or user is None:
            raise SignInRefused()
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(keys[0])
        pipe.zrem(keys[1], member)
        await pipe.execute()
        if passwords.needs_rehash(user.password_hash):
            await asyncio.to_thread(users.rehash_password, self.db, user.id, password)
        session_id = await asyncio.to_thread(self.sessions.start, user, address, replacing)
        return user, session_id

    def _check(self, username: str, password: str) -> tuple[User | None, bool]:
        user = users.get_user(self.db, username)
        ok = passwords.verify(user.password_hash if user else None, password)
        return user, ok and user is not None and not user.disabled
