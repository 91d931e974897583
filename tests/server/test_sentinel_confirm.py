"""Behind Sentinel, every write its caller is told was accepted waits for a replica
(`fnhub.redis_wait`), not only async calls: a cron job's run-now, WebSub subscription intents,
`fnhub.websub.publish` and `DFF.FUNC` from a script, the CLI's direct enqueue (`QueueClient`)
and `fnhub cron run`. With the replica stopped (SIGSTOP: it stays connected but confirms
nothing) each is refused with `not_replicated` instead of acknowledged; with it running each
goes through."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest
from tests.sentinel_redis import SentinelRedis

from fnhub.calling.errors import CallError
from fnhub.calling.queue_client import QueueClient
from fnhub.config import Settings

from .conftest import SCRIPT, Stack, close_stack, make_stack

PUBLISH = """

@fnhub.api("Publish to a WebSub topic from a script")
def pub(topic: str):
    import fnhub.websub
    return fnhub.websub.publish(topic, {"hello": "world"})


@fnhub.api("Queue a child task the DataFlux Func way")
def spawn():
    return DFF.FUNC("demo.echo", {"child": True})
"""

TIMEOUT = "0.5"  # enqueue_replicas_timeout: short, so that the refusals come quickly
TOPIC = "http://topics.example/news"


@pytest.fixture(scope="module")
def sentinel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelRedis]:
    redis = SentinelRedis(tmp_path_factory.mktemp("sentinel"), replicas=1)
    redis.start()
    try:
        yield redis
    finally:
        redis.close()


@pytest.fixture(scope="module")
def stack(sentinel: SentinelRedis, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = make_stack(
        tmp_path_factory.mktemp("stack"),
        script=SCRIPT + PUBLISH,
        redis_url=sentinel.url,
        enqueue_replicas_timeout=TIMEOUT,
        websub_allow_networks="127.0.0.0/8",
    )
    try:
        with s.admin() as c:
            job = {"id": "nightly", "function": "demo.echo", "expr": "0 3 * * *"}
            assert c.post("/api/v1/cron-jobs", json=job).status_code == 201
        yield s
    finally:
        close_stack(s)


@contextlib.contextmanager
def replica_stopped(sentinel: SentinelRedis) -> Iterator[None]:
    """The replica stopped (still connected, so the primary counts it online) for the block."""
    assert sentinel.primary_port() == sentinel.ports[0]  # no failover in these tests
    replica = sentinel.processes[1]
    replica.send_signal(signal.SIGSTOP)
    try:
        yield
    finally:
        replica.send_signal(signal.SIGCONT)


def _refused_503(r: httpx.Response, what: str) -> None:
    assert r.status_code == 503, (r.status_code, r.text)
    assert r.headers.get("retry-after") == "2", r.headers
    assert f"Redis took {what} but fewer than 1 replica(s) confirmed it within 0.5s" in r.text


def _runs_audited(stack: Stack, actor: str) -> list[dict[str, object]]:
    """The audit log's `cron_job.run` entries by an actor starting with `actor`, newest first:
    what each says."""
    with stack.admin() as c:
        page = c.get("/api/v1/audit", params={"action": "cron_job.run", "limit": 100})
    assert page.status_code == 200, page.text
    return [item["after"] for item in page.json()["items"] if item["actor"].startswith(actor)]


def test_run_now_is_refused_without_a_replica(stack: Stack, sentinel: SentinelRedis) -> None:
    with stack.admin() as c:
        r = c.post("/api/v1/cron-jobs/nightly/run")
        assert r.status_code == 202, r.text
        assert _runs_audited(stack, "key:")[0] == r.json()  # no outcome: confirmed
        with replica_stopped(sentinel):
            r = c.post("/api/v1/cron-jobs/nightly/run")
        _refused_503(r, "the run")
        assert r.json()["error"]["code"] == "not_replicated"
    # refused, yet Redis took it and a worker may run it: the audit log has it all the same
    refused = _runs_audited(stack, "key:")[0]
    assert refused["outcome"] == "not confirmed", refused
    assert set(refused) == {"task_id", "queue", "outcome"}, refused


def test_subscription_intents_are_refused_without_a_replica(
    stack: Stack, sentinel: SentinelRedis
) -> None:
    form = {"hub.callback": "http://127.0.0.1:9/cb", "hub.topic": TOPIC}
    with stack.client() as c:
        for mode in ("subscribe", "unsubscribe"):
            r = c.post("/websub/hub", data={"hub.mode": mode, **form})
            assert r.status_code == 202, r.text
            with replica_stopped(sentinel):
                r = c.post("/websub/hub", data={"hub.mode": mode, **form})
            _refused_503(r, f"the {mode} request")


def test_a_script_publish_is_refused_without_a_replica(
    stack: Stack, sentinel: SentinelRedis
) -> None:
    with stack.admin() as c:
        r = c.post("/api/v1/functions/demo.pub/call", json={"kwargs": {"topic": TOPIC}})
        assert r.status_code == 200, r.text
        with replica_stopped(sentinel):  # the call itself is not confirmed: it is waited for
            r = c.post("/api/v1/functions/demo.pub/call", json={"kwargs": {"topic": TOPIC}})
    assert r.status_code == 500, r.text
    error = r.json()["error"]
    assert "CallError" in str(error), error
    assert "Redis took the notification but fewer than 1 replica(s) confirmed" in str(error)


def test_a_scripts_dff_func_is_refused_without_a_replica(
    stack: Stack, sentinel: SentinelRedis
) -> None:
    with stack.admin() as c:
        r = c.post("/api/v1/functions/demo.spawn/call", json={"kwargs": {}})
        assert r.status_code == 200, r.text
        with replica_stopped(sentinel):
            r = c.post("/api/v1/functions/demo.spawn/call", json={"kwargs": {}})
    assert r.status_code == 500, r.text
    assert "Redis took the task but fewer than 1 replica(s) confirmed" in r.text


def _settings(stack: Stack, sentinel: SentinelRedis) -> Settings:
    return Settings(
        redis_url=sentinel.url,
        key_prefix=stack.prefix,
        enqueue_replicas_timeout=float(TIMEOUT),
    )


def test_the_clis_direct_submit_is_refused_without_a_replica(
    stack: Stack, sentinel: SentinelRedis
) -> None:
    client = QueueClient(_settings(stack, sentinel))
    try:
        client.submit("demo.echo", {"n": 1})
        with replica_stopped(sentinel), pytest.raises(CallError) as refused:
            client.submit("demo.echo", {"n": 2})
    finally:
        client.close()
    assert refused.value.kind == "not_replicated"
    assert "Redis took the task but fewer than 1 replica(s) confirmed it" in str(refused.value)


def test_cli_cron_run_is_refused_without_a_replica(stack: Stack, sentinel: SentinelRedis) -> None:
    def cron_run() -> subprocess.CompletedProcess[str]:
        command = "from fnhub.cli import main; main()"
        return subprocess.run(
            [sys.executable, "-c", command, "cron", "run", "nightly", "-p", str(stack.dir)],
            env=stack.env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    done = cron_run()
    assert done.returncode == 0, done.stderr
    confirmed = _runs_audited(stack, "cli")[0]
    assert "outcome" not in confirmed and confirmed["task_id"] in done.stdout, confirmed
    with replica_stopped(sentinel):
        done = cron_run()
    assert done.returncode != 0
    assert "fewer than 1 replica(s) confirmed" in " ".join(done.stderr.split()), done.stderr
    refused = _runs_audited(stack, "cli")[0]
    assert refused["outcome"] == "not confirmed" and refused != confirmed, refused
