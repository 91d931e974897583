"""`fnhub.redis_wait` against real Redis servers of the test's own (a primary and a replica,
no Sentinel): confirmed writes, a refusal when no replica has the write, and after a promotion
the new primary trusted alone while the old one is refused."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import redis.asyncio as aredis
from tests.conftest import free_port, wait_for

from fnhub.calling.errors import CallError
from fnhub.config import Settings
from fnhub.redis_wait import ReplicaConfirm, replicas_to_confirm

#: how long a write waits for its replica: on a loaded machine the replica's answer to WAIT's
#: GETACK took over 0.3 s (a confirmed write refused in CI); a refusal costs the whole wait
WAIT_SECONDS = 1.5
SCRIPT = "redis.call('SET', KEYS[1], ARGV[1]) return redis.call('INCR', KEYS[2])"


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[int, int]]:
    """A primary and its replica, in sync."""
    ports = [free_port(), free_port()]
    procs = []
    for i, port in enumerate(ports):
        args = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
        args += ["--appendonly", "no", "--dir", str(tmp_path)]
        if i:
            args += ["--replicaof", "127.0.0.1", str(ports[0])]
        procs.append(subprocess.Popen(args, stdout=subprocess.DEVNULL))
    replica = redis.Redis(port=ports[1], decode_responses=True)
    wait_for(lambda: _info(replica).get("master_link_status") == "up", timeout=10)
    replica.close()
    yield ports[0], ports[1]
    for proc in procs:
        proc.kill()
        proc.wait()


def _info(client: redis.Redis) -> dict:
    try:
        return client.info("replication")
    except redis.ConnectionError:
        return {}


async def _write(confirm: ReplicaConfirm, port: int, n: int) -> list:
    client = aredis.Redis(port=port)
    try:
        pipe = client.pipeline(transaction=True)
        pipe.set("k", n)
        await client.register_script(SCRIPT)(keys=["s", "count"], args=[n], client=pipe)
        return await confirm.execute(client, pipe)
    finally:
        await client.aclose()


def test_replicas_default_to_one_behind_sentinel_only() -> None:
    assert replicas_to_confirm(Settings(redis_url="redis://127.0.0.1:6379/0")) == 0
    assert replicas_to_confirm(Settings()) == 0  # the embedded Redis
    assert replicas_to_confirm(Settings(redis_url="redis+sentinel://127.0.0.1:1/s")) == 1
    given = Settings(redis_url="redis+sentinel://127.0.0.1:1/s", enqueue_replicas=0)
    assert replicas_to_confirm(given) == 0


async def test_confirmed_by_the_replica_and_refused_without_it(pair: tuple[int, int]) -> None:
    primary, replica_port = pair
    confirm = ReplicaConfirm(1, WAIT_SECONDS)
    replies = await _write(confirm, primary, 1)
    assert replies[0] is True or replies[0] == b"OK" or replies[0] == "OK"
    assert int(replies[1]) == 1  # the script ran (sent as EVAL: the server never loaded it)
    replica = redis.Redis(port=replica_port)
    assert replica.get("k") == b"1"  # confirmed means there
    assert confirm.confirmed_replid == _info(redis.Redis(port=primary))["master_replid"]
    replica.execute_command("REPLICAOF", "127.0.0.1", str(free_port()))  # away from it
    replica.close()
    with pytest.raises(CallError) as refused:
        await _write(confirm, primary, 2)
    assert refused.value.kind == "not_replicated"
    assert "fewer than 1 replica(s) confirmed" in str(refused.value)


async def test_after_a_promotion_the_successor_alone_is_trusted(pair: tuple[int, int]) -> None:
    old, new = pair
    confirm = ReplicaConfirm(1, WAIT_SECONDS)
    await _write(confirm, old, 1)  # seen with its replica
    promoted = redis.Redis(port=new)
    promoted.execute_command("REPLICAOF", "NO", "ONE")  # what Sentinel does first
    with pytest.raises(CallError):  # the old primary, which nobody follows now
        await _write(confirm, old, 2)
    await _write(confirm, new, 3)  # the successor: no replica yet, accepted
    assert confirm.alone == _info(promoted)["master_replid"]
    await _write(confirm, new, 4)  # still alone: accepted without waiting
    with pytest.raises(CallError):  # the old one stays refused
        await _write(confirm, old, 5)
    # a primary with no history in common is not a successor
    stranger = ReplicaConfirm(1, WAIT_SECONDS)
    with pytest.raises(CallError):
        await _write(stranger, new, 6)
    promoted.close()


def _write_sync(confirm: ReplicaConfirm, port: int, n: int) -> list:
    client = redis.Redis(port=port)
    try:
        pipe = client.pipeline(transaction=True)
        pipe.set("k", n)
        client.register_script(SCRIPT)(keys=["s", "count"], args=[n], client=pipe)
        return confirm.execute_sync(client, pipe, "the write")
    finally:
        client.close()


def test_a_synchronous_client_is_confirmed_and_refused_alike(pair: tuple[int, int]) -> None:
    """`execute_sync` (the CLI, scripts in a worker) drives the same exchange."""
    old, new = pair
    confirm = ReplicaConfirm(1, WAIT_SECONDS)
    replies = _write_sync(confirm, old, 1)
    assert int(replies[1]) == 1  # the script ran
    assert confirm.confirmed_replid == _info(redis.Redis(port=old))["master_replid"]
    promoted = redis.Redis(port=new)
    assert promoted.get("k") == b"1"  # confirmed means there
    promoted.execute_command("REPLICAOF", "NO", "ONE")
    with pytest.raises(CallError) as refused:  # the old primary, which nobody follows now
        _write_sync(confirm, old, 2)
    assert refused.value.kind == "not_replicated"
    assert "Redis took the write but fewer than 1 replica(s)" in str(refused.value)
    _write_sync(confirm, new, 3)  # the successor, alone: accepted
    assert confirm.alone == _info(promoted)["master_replid"]
    promoted.close()
