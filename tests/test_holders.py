"""`fnhub.holders.Watch` and `Unconnected`: which CLIENT LIST readings make a stale lease
holder gone (the processes and Redis behind them: tests/test_lease.py, tests/test_shares.py,
tests/subscriptions/test_direct_redis_consumer.py)."""

from __future__ import annotations

import redis
from tests.conftest import REDIS_URL, redis_url_without_client

from fnhub.holders import QUIET_SECONDS, Unconnected, Watch, connected, process_of

OLD = QUIET_SECONDS  # our own connections' age once they are old enough to judge


def test_owners_and_connection_names_map_to_processes():
    assert process_of("host-1-abc") == "host-1-abc"
    assert process_of("host-1-abc/beat") == process_of("host-1-abc/f00/x") == "host-1-abc"
    listed = [
        {"name": "fnhub-server:host-1-abc", "age": "7"},
        {"name": "fnhub-server:host-1-abc", "age": "2"},
        {"name": "fnhub-worker:host-2-def", "age": "4"},
        {"name": "", "age": "9"},  # unnamed: nobody's
        {"name": "someone-else", "age": "9"},
    ]
    assert connected(listed) == {"host-1-abc": 7, "host-2-def": 4}


def test_a_holder_seen_connected_and_then_not_is_gone():
    watch = Watch("me/1")
    assert watch.wants_list({"h/1"}, set())  # never looked at
    assert watch.update({"me": OLD, "h": 10}, {"h/1"}, set()) == set()
    assert not watch.wants_list({"h/1"}, set())  # renewing: nothing more to ask
    assert watch.wants_list({"h/1"}, {"h/1"})  # stale: worth a look
    assert watch.update({"me": OLD, "h": 10}, {"h/1"}, {"h/1"}) == set()  # frozen, connected
    assert watch.update({"me": OLD}, {"h/1"}, {"h/1"}) == {"h"}
    assert watch.gone() == ["h"]
    assert not watch.wants_list({"h/1"}, {"h/1"})  # judged already


def test_a_holder_never_seen_connected_is_never_judged():
    """Unnamed connections (an ACL refusing CLIENT SETNAME, an older version)."""
    watch = Watch("me")
    assert watch.update({"me": OLD}, {"h"}, set()) == set()
    assert watch.update({"me": OLD}, {"h"}, {"h"}) == set()
    assert not watch.wants_list({"h"}, {"h"})  # looked at, never seen: no lists every poll


def test_nobody_is_judged_while_our_own_connections_are_young():
    """A restarted Redis or a new primary: every live holder is still reconnecting."""
    watch = Watch("me")
    watch.update({"me": OLD, "h": 10}, {"h"}, set())
    assert watch.update({"me": OLD - 1}, {"h"}, {"h"}) == set()
    assert watch.update({}, {"h"}, {"h"}) == set()  # our own connections unnamed
    assert watch.update({"me": OLD}, {"h"}, {"h"}) == {"h"}


def test_our_own_process_is_never_judged():
    watch = Watch("me/1")
    assert not watch.wants_list({"me/2"}, {"me/2"})
    assert watch.update({"me": OLD}, {"me/2"}, {"me/2"}) == set()


def test_a_stale_holder_is_gone_once_absent_from_two_lists_apart():
    judge = Unconnected("child", "me", 0.25)
    assert judge.update({"me": OLD}, {"h"}, 10.0) == set()  # first absence: noted
    assert judge.confirming
    assert judge.update({"me": OLD}, {"h"}, 10.1) == set()  # too soon: a reconnection?
    assert judge.update({"me": OLD, "h": 0}, {"h"}, 10.2) == set()  # it was: back
    assert not judge.confirming
    assert judge.update({"me": OLD}, {"h"}, 11.0) == set()
    assert judge.update({"me": OLD}, {"h"}, 11.25) == {"h"}
    assert judge.update({"me": OLD}, set(), 12.0) == set() and not judge.confirming  # renewed


def test_unconnected_judges_nobody_while_our_connections_are_young_nor_itself():
    judge = Unconnected("child", "me", 0.25)
    assert judge.update({"me": OLD - 1}, {"h"}, 10.0) == set()
    assert judge.update({"me": OLD - 1}, {"h"}, 11.0) == set() and not judge.confirming
    assert judge.update({}, {"h"}, 12.0) == set()  # our own connections unnamed: never
    assert judge.update({"me": OLD}, {"me"}, 13.0) == set()
    assert judge.update({"me": OLD}, {"me"}, 14.0) == set() and judge.judged == 2


def test_unconnected_lists_only_for_stale_holders_and_never_once_refused():
    r = redis.Redis.from_url(REDIS_URL)
    judge = Unconnected("child", "me", 0.25)
    with redis_url_without_client(r, REDIS_URL) as url:
        limited = redis.Redis.from_url(url)
        assert judge.judge_sync(limited, set()) == set() and not judge.refused  # not asked
        assert judge.judge_sync(limited, {"h"}) == set() and judge.refused
        limited.close()
    assert judge.judge_sync(r, {"h"}) == set() and judge.judged == 0  # lapses only, for good


def test_unconnected_waits_for_its_callers_quiet_time():
    """A caller with a clock of its own (a worker supervisor: 3 beats) sets how old our own
    connections must be before a verdict."""
    judge = Unconnected("worker", "me", 0.25, quiet=1.5)
    assert judge.update({"me": 1}, {"h"}, 10.0) == set() and not judge.confirming
    assert judge.update({"me": 2}, {"h"}, 11.0) == set() and judge.confirming  # < QUIET_SECONDS
    assert judge.update({"me": 2}, {"h"}, 11.25) == {"h"}
