"""Console sessions: a random 256-bit id in an HttpOnly cookie, only its SHA-256 in the database.

A session ends when it has been idle for `session_idle_seconds`, at `session_max_seconds` after
sign-in whatever its use, at sign-out, or when its user's password changes or the user is
disabled or removed. Every sign-in makes a new id (and ends the session of the cookie the browser
came with), so an id planted in a browser before sign-in is never honoured. The CSRF token is an
HMAC of the id: it needs no storage and cannot be derived from what the database holds.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass

from sqlalchemy import delete, or_
from sqlalchemy.orm import Session

from fnhub import audit
from fnhub.accounts.models import User, UserSession
from fnhub.store.db import Database, rows_changed

COOKIE = "fnhub_session"
TOUCH_SECONDS = 60.0  # last use is written at most this often per session
_ID = re.compile(r"^[A-Za-z0-9_-]{43}$")  # 32 random bytes, urlsafe base64 without padding


def new_id() -> str:
    return secrets.token_urlsafe(32)


def hash_id(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def csrf_token(session_id: str) -> str:
    """The token state-changing requests of this session must carry in `X-CSRF-Token`."""
    mac = hmac.new(session_id.encode(), b"fnhub csrf token", hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def csrf_ok(session_id: str, sent: str | None) -> bool:
    return sent is not None and hmac.compare_digest(csrf_token(session_id), sent)


@dataclass(frozen=True, slots=True)
class SignedIn:
    """A valid session and who it belongs to (a snapshot: role and state as of this request)."""

    session_id: str
    user_id: int
    username: str
    role: str


def end_sessions_of(session: Session, user_id: int, keep: str | None = None) -> None:
    """End every session of a user (except the session with id `keep`), in `session`'s
    transaction: after a password change, a disable or a removal."""
    query = delete(UserSession).where(UserSession.user_id == user_id)
    if keep is not None:
        query = query.where(UserSession.id_hash != hash_id(keep))
    session.execute(query)


class SessionStore:
    def __init__(self, db: Database, idle_seconds: float, max_seconds: float) -> None:
        self.db = db
        self.idle_seconds = idle_seconds
        self.max_seconds = max_seconds

    def start(self, user: User, client: str, replacing: str | None = None) -> str:
        """A new session for `user`; the one of `replacing` (the cookie sent along) ends."""
        session_id = new_id()
        now = time.time()
        with self.db.session() as session, session.begin():
            if replacing:
                session.execute(
                    delete(UserSession).where(UserSession.id_hash == hash_id(replacing))
                )
            session.execute(  # expired sessions of anyone: the table only holds live ones
                delete(UserSession).where(
                    or_(
                        UserSession.expires_at <= now,
                        UserSession.last_seen_at <= now - self.idle_seconds,
                    )
                )
            )
            session.add(
                UserSession(
                    id_hash=hash_id(session_id),
                    user_id=user.id,
                    created_at=now,
                    last_seen_at=now,
                    expires_at=now + self.max_seconds,
                    client=client[:64],
                )
            )
            audit.record(
                session,
                audit.user_actor(user.username),
                "user.sign_in",
                f"user:{user.username}",
                None,
                {"client": client},
            )
        return session_id

    def lookup(self, session_id: str | None) -> SignedIn | None:
        """The session's user if the id is valid, unexpired and the user enabled; None else."""
        if not session_id or not _ID.match(session_id):
            return None
        now = time.time()
        id_hash = hash_id(session_id)
        with self.db.session() as session:
            row = session.get(UserSession, id_hash)
            if row is None or row.expires_at <= now:
                return None
            if row.last_seen_at <= now - self.idle_seconds:
                return None
            user = session.get(User, row.user_id)
            if user is None or user.disabled:
                return None
            if now - row.last_seen_at >= TOUCH_SECONDS:
                row.last_seen_at = now
                session.commit()
            return SignedIn(session_id, user.id, user.username, user.role)

    def end(self, signed_in: SignedIn) -> bool:
        """Sign out: the session's row goes, so its cookie is worthless from now on."""
        with self.db.session() as session, session.begin():
            gone = rows_changed(
                session.execute(
                    delete(UserSession).where(UserSession.id_hash == hash_id(signed_in.session_id))
                )
            )
            if gone:
                audit.record(
                    session,
                    audit.user_actor(signed_in.username),
                    "user.sign_out",
                    f"user:{signed_in.username}",
                )
        return bool(gone)
