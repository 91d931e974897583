"""Users as a resource: create, list, change (role, password, disabled), remove.

The API and `fnhub users` both go through these functions, which write the audit row in the
change's transaction. The last enabled admin cannot be demoted, disabled or removed, so an
installation always keeps someone who can manage it.
"""

from __future__ import annotations

import re
import time
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fnhub import audit
from fnhub.accounts import passwords
from fnhub.accounts.models import User, UserSession
from fnhub.accounts.roles import Role
from fnhub.accounts.sessions import end_sessions_of
from fnhub.store.db import Database
from fnhub.store.models import table_of

USERNAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$"
_USERNAME = re.compile(USERNAME_PATTERN)


class UserError(ValueError):
    """A refused change; `kind` is invalid (422), not_found (404), conflict or last_admin (409)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def user_json(row: User) -> dict[str, Any]:
    return {
        "username": row.username,
        "role": row.role,
        "disabled": row.disabled,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


def _state(row: User) -> dict[str, Any]:
    """What the audit log shows of a user (never the hash)."""
    return {"username": row.username, "role": row.role, "disabled": row.disabled}


def _check(
    username: str | None = None, password: str | None = None, role: str | None = None
) -> None:
    if username is not None and not _USERNAME.match(username):
        raise UserError(
            "invalid", "a username is 1-64 letters, digits, '_', '.', '@' or '-', starting alnum"
        )
    if password is not None:
        try:
            passwords.check_strength(password)
        except ValueError as exc:
            raise UserError("invalid", str(exc)) from None
    if role is not None and role not in Role.__members__.values():
        raise UserError("invalid", f"unknown role {role!r} (viewer, developer, admin)")


def list_users(db: Database) -> list[User]:
    with db.session() as session:
        return list(session.execute(select(User).order_by(User.username)).scalars())


def get_user(db: Database, username: str) -> User | None:
    with db.session() as session:
        return session.execute(select(User).where(User.username == username)).scalar_one_or_none()


def has_users(db: Database) -> bool:
    with db.session() as session:
        return bool(session.execute(select(func.count()).select_from(User)).scalar())


def create_user(db: Database, username: str, password: str, role: str, *, actor: str) -> User:
    _check(username, password, role)
    password_hash = passwords.hash_password(password)
    now = time.time()
    with db.session() as session, session.begin():
        if _find(session, username) is not None:
            raise UserError("conflict", f"user '{username}' already exists")
        row = User(
            username=username,
            password_hash=password_hash,
            role=role,
            disabled=False,
            created_at=now,
            updated_at=now,
        )
        session.add(row)
        audit.record(session, actor, "user.create", f"user:{username}", None, _state(row))
    return row


def update_user(
    db: Database,
    username: str,
    *,
    actor: str,
    role: str | None = None,
    password: str | None = None,
    disabled: bool | None = None,
    keep_session: str | None = None,
) -> User:
    """Change what is given. A new password or a disable ends the user's sessions (except
    `keep_session`, the session of a user changing their own password)."""
    _check(password=password, role=role)
    password_hash = passwords.hash_password(password) if password is not None else None
    with db.session() as session, session.begin():
        row = _find(session, username, lock=True)
        if row is None:
            raise UserError("not_found", f"no user '{username}'")
        before = _state(row)
        if role is not None:
            row.role = role
        if disabled is not None:
            row.disabled = disabled
        _keep_an_admin(session, row, before)
        after = _state(row)
        if password_hash is not None:
            row.password_hash = password_hash
            after["password"] = "new"  # masked: the log shows only that it changed
            before["password"] = "old"
        if password_hash is not None or row.disabled:
            end_sessions_of(session, row.id, keep=None if row.disabled else keep_session)
        row.updated_at = time.time()
        audit.record(session, actor, "user.update", f"user:{username}", before, after)
    return row


def rehash_password(db: Database, user_id: int, password: str) -> None:
    """Store a hash made with today's parameters (after a successful sign-in)."""
    with db.session() as session, session.begin():
        row = session.get(User, user_id)
        if row is not None and passwords.verify(row.password_hash, password):
            row.password_hash = passwords.hash_password(password)


def remove_user(db: Database, username: str, *, actor: str) -> None:
    with db.session() as session, session.begin():
        row = _find(session, username, lock=True)
        if row is None:
            raise UserError("not_found", f"no user '{username}'")
        before = _state(row)
        row.disabled = True  # counts as gone for the last-admin check
        _keep_an_admin(session, row, before)
        session.execute(table_of(UserSession).delete().where(UserSession.user_id == row.id))
        session.delete(row)
        audit.record(session, actor, "user.remove", f"user:{username}", before, None)


def _find(session: Session, username: str, *, lock: bool = False) -> User | None:
    query = select(User).where(User.username == username)
    if lock:
        query = query.with_for_update()
    return session.execute(query).scalar_one_or_none()


def _keep_an_admin(session: Session, row: User, before: dict[str, Any]) -> None:
    """Refuse a change that leaves no enabled admin (when this user was one)."""
    was_admin = before["role"] == Role.ADMIN and not before["disabled"]
    still_admin = row.role == Role.ADMIN and not row.disabled
    if not was_admin or still_admin:
        return
    others = session.execute(
        select(User.id)
        .where(User.role == Role.ADMIN, User.disabled.is_(False), User.id != row.id)
        .with_for_update()
    ).all()
    if not others:
        raise UserError("last_admin", f"'{row.username}' is the last enabled admin")
