"""The scripts' mirror in Redis put back after Redis lost it, never over a newer publish, never
while Redis is merely away (`ScriptStore.restore_mirror`, `scripts.mirror_watch`)."""

from __future__ import annotations

import pytest
import redis
import redis.asyncio as aredis
from tests.conftest import free_port

from fnhub.bootstrap import Services
from fnhub.redis_client import async_redis, sync_redis
from fnhub.scripts.mirror_watch import MirrorWatch
from fnhub.scripts.registry import read_active
from fnhub.scripts.store import ScriptStore
from fnhub.store.models import ScriptVersion

ONE = "import fnhub\n\n@fnhub.api()\ndef one():\n    return 1\n"
TWO = "import fnhub\n\n@fnhub.api()\ndef two():\n    return 2\n"


def _lose_everything(services: Services) -> None:
    """What a Redis restarted empty shows this prefix: none of its keys."""
    keys = list(services.redis.scan_iter(match=f"{services.keys.prefix}:*", count=1000))
    if keys:
        services.redis.delete(*keys)


def test_a_lost_mirror_comes_back_with_a_revision_past_every_cached_one(
    services: Services,
) -> None:
    services.scripts.publish({"s": ONE})
    cached = read_active(services.redis, services.keys)
    assert services.scripts.restore_mirror() is None  # the marker is there: nothing to do
    _lose_everything(services)
    assert read_active(services.redis, services.keys, cached).functions == {}
    restored = services.scripts.restore_mirror()
    assert restored is not None and restored.scripts == ["s"]
    assert not restored.mirror_was_there
    again = read_active(services.redis, services.keys, cached)
    assert again.revision > cached.revision  # past what any process cached
    assert set(again.functions) == {"s.one"}
    assert services.scripts.restore_mirror() is None  # once
    # a publish after a loss the watch has not seen yet moves the revision past too
    _lose_everything(services)
    services.scripts.publish({"s": TWO})
    assert read_active(services.redis, services.keys).revision > again.revision


class _Interleaved(ScriptStore):
    """A restore that lets a publish by another server run at one point of it: `at` "read"
    (after it read the database) or "write" (after it looked at the marker, before its MULTI
    ran). The publish is real, on its own connection and session."""

    def __init__(self, services: Services, other: ScriptStore, at: str) -> None:
        super().__init__(services.db, services.redis, services.keys)
        self.other = other
        self.at = at

    def _active_rows(self) -> list[ScriptVersion]:
        rows = super()._active_rows()
        if self.at == "read":
            self.other.publish({"s": TWO})
        return rows

    def _queue_mirror(self, pipe: object, rows: list[ScriptVersion], *, lost: bool) -> None:
        if self.at == "write":
            self.other.publish({"s": TWO})
        super()._queue_mirror(pipe, rows, lost=lost)  # type: ignore[arg-type]


@pytest.mark.parametrize("at", ["read", "write"])
def test_a_restore_never_overwrites_a_publish_made_meanwhile(services: Services, at: str) -> None:
    services.scripts.publish({"s": ONE})
    _lose_everything(services)
    other_redis = sync_redis(services.settings)
    try:
        other = ScriptStore(services.db, other_redis, services.keys)
        assert _Interleaved(services, other, at).restore_mirror() is None
    finally:
        other_redis.close()
    assert set(read_active(services.redis, services.keys).functions) == {"s.two"}


async def test_an_unreachable_redis_is_not_taken_for_an_empty_one(services: Services) -> None:
    services.scripts.publish({"s": ONE})
    _lose_everything(services)
    away = aredis.Redis(port=free_port(), socket_connect_timeout=0.5)
    watch = MirrorWatch(away, services.keys, services.scripts, "test")
    try:
        with pytest.raises(redis.ConnectionError):
            await watch.check()
    finally:
        await away.aclose()
    assert watch.restores == 0
    assert not services.redis.exists(services.keys.scripts)
    here = async_redis(services.settings)
    try:
        first = MirrorWatch(here, services.keys, services.scripts, "a")
        second = MirrorWatch(here, services.keys, services.scripts, "b")
        assert await first.check() is not None
        assert await second.check() is None and await first.check() is None
    finally:
        await here.aclose()
    assert set(read_active(services.redis, services.keys).functions) == {"s.one"}


def test_a_publish_that_changes_nothing_puts_a_lost_mirror_back(services: Services) -> None:
    """What `fnhub apply` does for a cluster without a server to restore it."""
    services.scripts.publish({"s": ONE})
    _lose_everything(services)
    [same] = services.scripts.publish({"s": ONE})
    assert not same.changed
    assert set(read_active(services.redis, services.keys).functions) == {"s.one"}
