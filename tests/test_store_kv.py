"""`fnhub.store` (`envs.kv.Store`) on SQLite, PostgreSQL and MariaDB: every operation, expiry
(invisible at once, purged later), glob patterns matched byte for byte, scopes."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from tests.conftest import fresh_database

from fnhub.envs.kv import Store, like_of, purge_expired
from fnhub.envs.models import StoreItem
from fnhub.store.db import Database


@pytest.fixture(params=["sqlite", "postgresql", "mysql"])
def db(request, tmp_path) -> Iterator[Database]:
    gen = fresh_database(request.param, tmp_path)
    database = Database(next(gen))
    database.migrate()
    yield database
    database.dispose()
    gen.close()


def rows(db: Database) -> list[tuple[str, str]]:
    query = sa.select(StoreItem.scope, StoreItem.key).order_by(StoreItem.scope, StoreItem.key)
    with db.session() as session:
        return [(scope, key) for scope, key in session.execute(query)]


def test_set_get_mset_mget_getall_delete_round_trip_json(db):
    store = Store(db)
    doc = {"name": "pump 7", "ratio": 0.1, "big": 2**62, "tags": ["a", "é", "漢"], "none": None}
    assert store.set("doc", doc, scope="s") is True
    assert store.get("doc", scope="s") == doc
    assert store.get("missing", "fallback", scope="s") == "fallback"
    assert store.set("falsy", 0, scope="s") and store.get("falsy", 1, scope="s") == 0
    assert store.set("null", None, scope="s") and store.get("null", "d", scope="s") is None
    store.set("doc", [1, 2], scope="s")  # replaced, not duplicated
    assert store.get("doc", scope="s") == [1, 2]
    assert store.mset({"a": 1, "b": {"x": True}, "c": "three"}, scope="s") is True
    assert store.mget(["a", "b", "nope"], scope="s") == {"a": 1, "b": {"x": True}, "nope": None}
    assert store.getall(scope="s") == {
        "a": 1, "b": {"x": True}, "c": "three", "doc": [1, 2], "falsy": 0, "null": None,
    }  # fmt: skip
    assert store.delete("a", scope="s") is True
    assert store.delete("a", scope="s") is False
    assert "a" not in store.getall(scope="s")


def test_scopes_are_apart_and_keys_are_exact_bytes(db):
    store = Store(db)
    store.set("k", "one", scope="first")
    store.set("k", "two", scope="second")
    store.set("K", "upper", scope="first")
    store.set("k ", "trailing space", scope="first")
    assert store.get("k", scope="first") == "one" and store.get("k", scope="second") == "two"
    assert store.get("K", scope="first") == "upper"
    assert store.get("k ", scope="first") == "trailing space"
    assert store.keys(scope="first") == ["K", "k", "k "]
    assert store.keys(scope="second") == ["k"]
    # outside a task the scope is "global"
    store.set("g", 1)
    assert store.getall(scope="global") == {"g": 1} and store.getall() == {"g": 1}


def test_not_exists_sets_a_missing_or_expired_key_only(db):
    store = Store(db)
    assert store.set("lock", "a", not_exists=True, scope="s") is True
    assert store.set("lock", "b", not_exists=True, scope="s") is False
    assert store.get("lock", scope="s") == "a"
    assert store.set("short", "old", expires=0.3, scope="s") is True
    assert store.set("short", "new", not_exists=True, scope="s") is False
    time.sleep(0.4)
    assert store.set("short", "new", not_exists=True, scope="s") is True
    assert store.get("short", scope="s") == "new"


def test_expired_keys_are_invisible_at_once_and_purged_later(db):
    store = Store(db)
    store.mset({"t1": 1, "t2": 2}, expires=0.4, scope="s")
    store.set("t3", 3, expires=0.4, scope="s")
    store.set("kept", "k", scope="s")
    store.set("later", "l", expires=3600, scope="s")
    assert store.keys("t*", scope="s") == ["t1", "t2", "t3"]
    time.sleep(0.5)
    assert store.get("t1", "gone", scope="s") == "gone"
    assert store.mget(["t1", "t3", "kept"], scope="s") == {"t1": None, "t3": None, "kept": "k"}
    assert store.getall(scope="s") == {"kept": "k", "later": "l"}
    assert store.keys(scope="s") == ["kept", "later"]
    assert store.get_pattern("t*", scope="s") == {}
    assert store.delete("t2", scope="s") is False  # expired: not there
    assert store.delete_pattern("t*", scope="s") == 0
    assert len(rows(db)) == 5  # still stored, only invisible
    assert purge_expired(db) == 3
    assert rows(db) == [("s", "kept"), ("s", "later")]
    assert purge_expired(db) == 0


def test_patterns_are_globs_matched_exactly(db):
    store = Store(db)
    keys = ["user:1", "user:2", "user:10", "User:3", "user_1", "user%1", "users", "u/ser:1", "x"]
    store.mset({k: k for k in keys}, scope="s")
    assert store.keys("user:*", scope="s") == ["user:1", "user:10", "user:2"]
    assert store.keys("user:?", scope="s") == ["user:1", "user:2"]
    assert store.keys("user_*", scope="s") == ["user_1"]  # `_` is no wildcard
    assert store.keys("user%*", scope="s") == ["user%1"]  # nor is `%`
    assert store.keys("u/ser:*", scope="s") == ["u/ser:1"]
    assert store.keys("[uU]ser:[13]", scope="s") == ["User:3", "user:1"]
    assert store.keys("*", scope="s") == sorted(keys)
    assert store.get_pattern("user:1*", scope="s") == {"user:1": "user:1", "user:10": "user:10"}
    assert store.delete_pattern("user:*", scope="s") == 3
    assert store.keys("user*", scope="s") == ["user%1", "user_1", "users"]
    assert store.keys("User:*", scope="s") == ["User:3"]


def test_bad_input_is_refused_with_the_reason(db):
    store = Store(db)
    with pytest.raises(TypeError, match="keeps JSON values; a set is not one"):
        store.set("k", {1, 2}, scope="s")
    with pytest.raises(ValueError, match="a key is a string of 1-256 characters"):
        store.set("x" * 257, 1, scope="s")
    with pytest.raises(ValueError, match="a key is a string"):
        store.get("", scope="s")
    with pytest.raises(ValueError, match="expires is seconds"):
        store.set("k", 1, expires=-1, scope="s")
    with pytest.raises(ValueError, match="a key cannot hold a NUL character"):
        store.set("a\x00b", 1, scope="s")
    with pytest.raises(ValueError, match="a scope must be valid Unicode"):
        store.get("k", scope="\ud800")
    with pytest.raises(ValueError, match="a scope is a string of 1-128"):
        store.set("k", 1, scope="s" * 129)
    assert store.getall(scope="s") == {}


def test_like_of_escapes_what_like_would_read():
    assert like_of("a*b?c") == "a%b_c"
    assert like_of("100%_/") == "100/%/_//"
    assert like_of("[ab]x") == "_x"
    assert like_of("[x") == "[x"


STORE_SCRIPT = """
import fnhub


@fnhub.api("Use the store")
def use(step: str):
    if step == "write":
        fnhub.store.mset({"a:1": 1, "a:2": {"x": [1]}, "b": "B"})
        fnhub.store.set("brief", True, expires=0.3)
        fnhub.store.set("team", "shared", scope="team")
        return fnhub.store.set("b", "again", not_exists=True)
    return {
        "all": fnhub.store.getall(),
        "pattern": fnhub.store.get_pattern("a:*"),
        "team": fnhub.store.get("team", scope="team"),
        "deleted": fnhub.store.delete_pattern("a:*"),
        "left": fnhub.store.keys(),
    }
"""


@pytest.mark.parametrize("kind", ["sqlite", "postgresql", "mysql"])
def test_scripts_use_the_store_in_a_real_worker(kind, settings, tmp_path):
    """A worker's `fnhub.store` opens the installation's database (`runtime.database`) and
    scopes keys to the script, on each database."""
    from tests.conftest import WorkerHandle, call_ok

    from fnhub.bootstrap import open_services
    from fnhub.calling.queue_client import QueueClient

    gen = fresh_database(kind, tmp_path)
    own = settings.model_copy(update={"db_url": next(gen)})
    services = open_services(own)
    client = QueueClient(own)
    worker = WorkerHandle(own, None, 1)
    try:
        services.scripts.publish({"kv": STORE_SCRIPT})
        worker.wait_ready(client)
        assert call_ok(client, "kv.use", {"step": "write"}).result is False
        time.sleep(0.4)
        assert call_ok(client, "kv.use", {"step": "read"}).result == {
            "all": {"a:1": 1, "a:2": {"x": [1]}, "b": "B"},
            "pattern": {"a:1": 1, "a:2": {"x": [1]}},
            "team": "shared",
            "deleted": 2,
            "left": ["b"],
        }
        assert Store(services.db).getall(scope="kv") == {"b": "B"}
        assert Store(services.db).getall(scope="team") == {"team": "shared"}
    finally:
        worker.stop()
        client.close()
        services.close()
        services.db.dispose()
        gen.close()
