"""Accounts without a server: audit masking, how a route's role is decided, session expiry and
ending, password checks (real SQLite)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from sqlalchemy import update
from starlette.requests import Request

from fnhub import audit
from fnhub.accounts import passwords
from fnhub.accounts.models import UserSession
from fnhub.accounts.roles import Role
from fnhub.accounts.sessions import SessionStore, csrf_ok, csrf_token, hash_id
from fnhub.accounts.users import UserError, create_user, remove_user, update_user
from fnhub.config import Settings
from fnhub.secret_box import SecretBox
from fnhub.server.access import required_role, role
from fnhub.store.db import Database


@pytest.fixture
def db(settings: Settings) -> Any:
    database = Database(settings.resolved_db_url())
    database.migrate()
    yield database
    database.dispose()


def test_mask_hides_secret_fields_and_sealed_values_and_tells_changes() -> None:
    box = SecretBox("k")
    before = {
        "host": "h",
        "password": "p1",
        "nested": [{"api_key": "a1", "port": 1}],
        "auth": {"type": "basic", "secret": "s1"},
        "opaque": box.encrypt("x"),
        "empty_token": "",
    }
    after = {**before, "password": "p2", "auth": {"type": "basic", "secret": "s1"}}
    assert audit.mask(before) == {
        "host": "h",
        "password": "*****",
        "nested": [{"api_key": "*****", "port": 1}],
        "auth": {"type": "basic", "secret": "*****"},
        "opaque": "*****",
        "empty_token": "",
    }
    shown = audit.mask(after, before, compare=True)
    assert shown["password"] == "***** (changed)"
    assert shown["auth"]["secret"] == "*****" and shown["nested"][0]["api_key"] == "*****"


def test_record_masks_and_skips_what_did_not_change(db: Database) -> None:
    assert (
        audit.record(db, "cli", "x.update", "x:1", {"a": 1, "token": "t"}, {"a": 1, "token": "t"})
        is None
    )
    row = audit.record(db, "cli", "x.update", "x:1", {"a": 1, "token": "t"}, {"a": 1, "token": "u"})
    assert row is not None and row.after == {"a": 1, "token": "***** (changed)"}
    items, cursor = audit.page(db)
    assert [i["id"] for i in items] == [row.id] and cursor is None


def _request(method: str, route: APIRoute | None) -> Request:
    return Request({"type": "http", "method": method, "headers": [], "route": route})


def test_a_route_needs_viewer_to_read_developer_to_change_unless_it_declares_otherwise() -> None:
    async def endpoint() -> None:
        return None

    app = FastAPI()
    plain = APIRoute("/things", endpoint, methods=["POST"])
    search = APIRoute("/things/search", endpoint, methods=["POST"], openapi_extra=role(Role.VIEWER))
    wipe = APIRoute("/things", endpoint, methods=["GET"], openapi_extra=role(Role.ADMIN))
    assert required_role(_request("GET", plain)) is Role.VIEWER
    assert required_role(_request("HEAD", plain)) is Role.VIEWER
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        assert required_role(_request(method, plain)) is Role.DEVELOPER
    assert required_role(_request("POST", search)) is Role.VIEWER
    assert required_role(_request("GET", wipe)) is Role.ADMIN
    assert required_role(_request("POST", None)) is Role.DEVELOPER
    app.router.routes.append(search)
    assert app.openapi()["paths"]["/things/search"]["post"]["x-fnhub-role"] == "viewer"
    assert Role.ADMIN.allows(Role.DEVELOPER) and not Role.VIEWER.allows(Role.DEVELOPER)


def test_sessions_end_when_idle_past_their_age_or_their_user_changes(db: Database) -> None:
    user = create_user(db, "ines", "password one", "admin", actor="cli")
    create_user(db, "ivan", "password two", "admin", actor="cli")
    store = SessionStore(db, idle_seconds=60, max_seconds=3600)
    idle, old, kept, other = (store.start(user, "127.0.0.1") for _ in range(4))
    assert all(store.lookup(s) for s in (idle, old, kept, other))
    with db.session() as s, s.begin():
        s.execute(
            update(UserSession)
            .where(UserSession.id_hash == hash_id(idle))
            .values(last_seen_at=time.time() - 61)
        )
        s.execute(
            update(UserSession)
            .where(UserSession.id_hash == hash_id(old))
            .values(expires_at=time.time() - 1)
        )
    assert store.lookup(idle) is None and store.lookup(old) is None
    assert store.lookup("A" * 43) is None and store.lookup("../../etc") is None
    update_user(db, "ines", password="password three", actor="cli", keep_session=kept)
    assert store.lookup(kept) is not None and store.lookup(other) is None
    update_user(db, "ines", disabled=True, actor="cli", keep_session=kept)
    assert store.lookup(kept) is None  # a disable ends every session, the caller's too
    update_user(db, "ines", disabled=False, actor="cli")
    assert store.lookup(kept) is None  # ended sessions stay ended


def test_the_last_enabled_admin_cannot_go(db: Database) -> None:
    create_user(db, "solo", "password one", "admin", actor="cli")
    create_user(db, "viewer1", "password one", "viewer", actor="cli")
    for change in ({"role": "developer"}, {"disabled": True}):
        with pytest.raises(UserError) as refused:
            update_user(db, "solo", actor="cli", **change)
        assert refused.value.kind == "last_admin"
    with pytest.raises(UserError):
        remove_user(db, "solo", actor="cli")
    create_user(db, "second", "password one", "admin", actor="cli")
    update_user(db, "solo", role="viewer", actor="cli")
    with pytest.raises(UserError) as invalid:
        create_user(db, "bad name!", "password one", "viewer", actor="cli")
    assert invalid.value.kind == "invalid"


def test_passwords_and_csrf_tokens() -> None:
    hashed = passwords.hash_password("right password")
    assert hashed.startswith("$argon2id$") and "right" not in hashed
    assert passwords.verify(hashed, "right password")
    assert not passwords.verify(hashed, "wrong password")
    assert not passwords.verify(None, "right password")
    assert not passwords.verify("not a hash", "x")
    token = csrf_token("a" * 43)
    assert csrf_ok("a" * 43, token) and not csrf_ok("b" * 43, token) and not csrf_ok("a" * 43, None)


def test_the_dummy_hash_is_not_computed(monkeypatch: pytest.MonkeyPatch) -> None:
    """An unknown user's sign-in is checked against `DUMMY_HASH`, made with the current
    parameters (so it costs what a real check costs): a server's start computes no hash."""
    monkeypatch.setattr(passwords, "_dummy_hash", None)  # as in a process that just started
    made: list[str] = []
    hasher = passwords._hasher
    monkeypatch.setattr(passwords, "_hasher", _Counting(hasher, made))
    passwords.warm_up()
    assert passwords.verify(None, "a password nobody has") is False
    assert made == [] and passwords._dummy_hash == passwords.DUMMY_HASH
    assert not hasher.check_needs_rehash(passwords.DUMMY_HASH)
    real = hasher.hash("a password")
    assert real.split("$")[:4] == passwords.DUMMY_HASH.split("$")[:4]  # same kind and cost


class _Counting:
    def __init__(self, hasher: Any, made: list[str]) -> None:
        self._hasher, self._made = hasher, made

    def hash(self, password: str) -> str:
        self._made.append(password)
        return str(self._hasher.hash(password))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._hasher, name)
