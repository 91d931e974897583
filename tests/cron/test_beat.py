"""The beat against the real Redis: ticks, fan-out, fencing, overlap, misfires, pauses."""

from __future__ import annotations

import asyncio
import time

import msgspec

from fnhub import runtime
from fnhub.bootstrap import Services
from fnhub.config import Settings
from fnhub.cron import control
from fnhub.cron.beat import Beat
from fnhub.cron.fire import ALREADY, FIRED
from fnhub.queue import iter_results
from fnhub.redis_client import async_redis

from .conftest import add_job, queued, running_beat, ticks_of, wait_for


async def test_fires_every_second_tick_once_with_its_details(services: Services) -> None:
    add_job(
        services,
        id="every",
        function="jobs.tick",
        expr="* * * * * *",
        overlap="allow",
        kwargs={"n": 7},
    )
    async with running_beat(services.settings, services) as beat:
        await wait_for(lambda: beat.stats.fired >= 3, 6)
    tasks = queued(services)
    ticks = ticks_of(tasks, "every")
    assert len(ticks) >= 3
    assert ticks == sorted(set(ticks)) and ticks == list(range(ticks[0], ticks[0] + len(ticks)))
    task = tasks[0]
    assert task.origin == "cron" and task.queue == "cron" and task.kwargs == {"n": 7}
    assert task.trigger_time == task.meta["cron"]["tick"]
    assert task.meta["cron"]["expr"] == "* * * * * *"
    assert task.record_limit == services.settings.cron_record_limit
    assert max(beat.stats.late) < 0.1


async def test_delayed_crontab_fans_a_tick_out(services: Services) -> None:
    add_job(services, id="fan", function="jobs.fanned", expr="* * * * * *")
    async with running_beat(services.settings, services) as beat:
        await wait_for(lambda: beat.stats.fired >= 1, 4)
    now_tasks = queued(services)
    assert len(now_tasks) == 1 and now_tasks[0].meta["cron"]["delay"] == 0
    tick = now_tasks[0].meta["cron"]["tick"]
    delayed = services.redis.zrange(services.keys.delayed, 0, -1, withscores=True)
    assert [score for _, score in delayed] == [tick + 2.0]
    # the running marker rides on the last run of the fan-out
    member = delayed[0][0].decode().split("|")[1]
    raw = services.redis.hget(services.keys.delayed_tasks, member)
    later = msgspec.msgpack.decode(raw)
    assert later["meta"]["running_marker"] == services.keys.running_marker("cron:fan")
    assert "running_marker" not in now_tasks[0].meta


async def test_fixed_crontab_outranks_the_jobs_expression(services: Services) -> None:
    add_job(services, id="fixed", function="jobs.fixed", expr="0 0 1 1 *", overlap="allow")
    async with running_beat(services.settings, services) as beat:
        await wait_for(lambda: beat.stats.fired >= 2, 6)
    ticks = ticks_of(queued(services), "fixed")
    assert all(t % 2 == 0 for t in ticks) and ticks[1] - ticks[0] == 2


async def test_one_leader_among_beats_and_no_double_ticks(services: Services) -> None:
    add_job(services, id="shared", function="jobs.tick", expr="* * * * * *", overlap="allow")
    async with (
        running_beat(services.settings, services) as one,
        running_beat(services.settings, services) as two,
    ):
        await wait_for(lambda: one.stats.fired + two.stats.fired >= 3, 6)
        assert one.leading != two.leading
    ticks = ticks_of(queued(services), "shared")
    assert len(ticks) == len(set(ticks)) >= 3


async def test_deposed_leader_cannot_enqueue_and_a_tick_is_decided_once(
    services: Services,
) -> None:
    add_job(services, id="fence", function="jobs.tick", expr="0 0 1 1 *", overlap="allow")
    client = async_redis(services.settings)
    beat = Beat(services.settings, client, services.db, beat_id="old-leader")
    await beat.refresh()
    job = beat.jobs["fence"]
    tick = int(time.time())
    segment = beat._segment(job, tick, beat._tasks(job, tick))
    services.redis.set(services.keys.beat_leader, "someone-else")
    assert await beat._send([segment]) is None  # not the lease holder: refused whole
    assert queued(services) == []
    services.redis.set(services.keys.beat_leader, "old-leader")
    assert await beat._send([segment]) == [FIRED]
    assert await beat._send([segment]) == [ALREADY]  # the watermark: same tick again
    older = beat._segment(job, tick - 60, beat._tasks(job, tick - 60))
    assert await beat._send([older]) == [ALREADY]
    assert len(queued(services)) == 1
    await client.aclose()


async def test_a_leader_back_after_a_failover_does_not_fire_again_what_it_fired(
    services: Services,
) -> None:
    add_job(services, id="again", function="jobs.tick", expr="* * * * * *", overlap="allow")
    async with running_beat(services.settings, services) as beat:
        await wait_for(lambda: beat.stats.fired >= 3, 6)
        # a failover: the new primary lacks the last seconds' watermark writes, and the beat
        # stood down meanwhile (its lease renewal failed); it leads again at its next step
        fired = int(services.redis.hget(services.keys.cron_fired, "again"))
        services.redis.hset(services.keys.cron_fired, "again", fired - 3)
        beat._stand_down()
        await wait_for(lambda: beat.leading and beat.stats.fired >= 5, 6)
    ticks = ticks_of(queued(services), "again")
    assert len(ticks) >= 5
    assert ticks == sorted(set(ticks)), "a tick was fired twice"


async def test_overlap_skip_records_skipped_and_allow_runs_anyway(services: Services) -> None:
    add_job(services, id="one-at-a-time", function="jobs.tick", expr="* * * * * *")
    add_job(services, id="overlapping", function="jobs.tick", expr="* * * * * *", overlap="allow")
    async with running_beat(services.settings, services) as beat:
        await wait_for(lambda: beat.stats.skipped >= 2, 6)
    tasks = queued(services)  # no worker: the first run of one-at-a-time never ends
    assert len(ticks_of(tasks, "one-at-a-time")) == 1
    assert len(ticks_of(tasks, "overlapping")) >= 3
    records = [r for _, f in services.redis.xrange(services.keys.records) for r in iter_results(f)]
    skipped = [r for r in records if r.status == "skipped"]
    assert len(skipped) >= 2 and {r.origin_id for r in skipped} == {"one-at-a-time"}
    assert skipped[0].error_type == "OverlapSkipped"


async def test_misfire_skip_after_downtime(services: Services) -> None:
    add_job(services, id="skipper", function="jobs.tick", expr="* * * * * *", overlap="allow")
    services.redis.hset(services.keys.cron_fired, "skipper", int(time.time()) - 3600)
    async with running_beat(services.settings, services) as beat:
        await wait_for(lambda: beat.stats.fired >= 2, 6)
    ticks = ticks_of(queued(services), "skipper")
    grace = services.settings.cron_misfire_grace_seconds
    assert min(ticks) >= time.time() - grace - 5  # nothing from the hour of downtime
    assert beat.stats.missed == 1


async def test_misfire_run_once_after_downtime(services: Services) -> None:
    started = int(time.time())
    last_missed = started - 300  # hourly at this minute and second: 5 minutes ago
    when = time.gmtime(last_missed)
    add_job(
        services,
        id="catcher",
        function="jobs.tick",
        expr=f"{when.tm_sec} {when.tm_min} * * * *",
        misfire="run_once",
        overlap="allow",
    )
    services.redis.hset(services.keys.cron_fired, "catcher", started - 3 * 3600)
    async with running_beat(services.settings, services) as beat:
        await wait_for(lambda: beat.stats.fired >= 1, 4)
        await asyncio.sleep(0.3)
    assert ticks_of(queued(services), "catcher") == [last_missed]  # 3 missed ticks, run once


async def test_pause_job_global_and_expiry(services: Services) -> None:
    add_job(services, id="pausable", function="jobs.tick", expr="* * * * * *", overlap="allow")
    pipe = services.redis.pipeline()
    control.add_pause(pipe, services.keys, "pausable", 1.5)
    pipe.execute()
    async with running_beat(services.settings, services) as beat:
        await wait_for(lambda: beat.stats.paused >= 1, 4)
        assert queued(services) == []
        await wait_for(lambda: beat.stats.fired >= 1, 4)  # the pause expired by itself
        pipe = services.redis.pipeline()
        control.add_pause(pipe, services.keys, None)  # all jobs, until resumed
        pipe.execute()
        fired = beat.stats.fired
        paused = beat.stats.paused
        await wait_for(lambda: beat.stats.paused >= paused + 2, 4)
        assert beat.stats.fired == fired
        pipe = services.redis.pipeline()
        control.add_resume(pipe, services.keys, None)
        pipe.execute()
        await wait_for(lambda: beat.stats.fired > fired, 4)


async def test_dynamic_expression_from_a_script_and_its_expiry(
    services: Services, settings: Settings
) -> None:
    add_job(services, id="dyn", function="jobs.tick", expr="0 0 1 1 *", overlap="allow")
    runtime.init(settings, services.redis)
    import fnhub

    async with running_beat(settings, services) as beat:
        await asyncio.sleep(0.3)
        assert beat.stats.fired == 0
        fnhub.cron.set_expression("* * * * * *", job_id="dyn", expires=2.5)
        assert fnhub.cron.get_expression("dyn") == "* * * * * *"
        await wait_for(lambda: beat.stats.fired >= 2, 4)
        await asyncio.sleep(3)  # past the expiry: back to once a year
        fired = beat.stats.fired
        await asyncio.sleep(1.5)
        assert beat.stats.fired == fired
    assert fnhub.cron.get_expression("dyn") is None
    assert all(t["cron"]["expr"] == "* * * * * *" for t in (x.meta for x in queued(services)))


async def test_new_and_removed_jobs_are_picked_up_while_running(services: Services) -> None:
    async with running_beat(services.settings, services) as beat:
        await asyncio.sleep(0.3)
        add_job(
            services, id="late-comer", function="jobs.tick", expr="* * * * * *", overlap="allow"
        )
        await wait_for(lambda: beat.stats.fired >= 1, 4)
        assert "late-comer" in beat.jobs


async def test_run_now_ignores_schedule_and_pause(services: Services) -> None:
    spec = add_job(services, id="manual", function="jobs.tick", expr="0 0 1 1 *")
    pipe = services.redis.pipeline()
    control.add_pause(pipe, services.keys, "manual")
    client_active = __import__("fnhub.calling.queue_client").calling.queue_client.QueueClient(
        services.settings, services.redis
    )
    task = control.run_now(services.settings, client_active.active(), spec, pipe)
    pipe.execute()
    assert [t.id for t in queued(services)] == [task.id]
    assert task.meta["cron"]["manual"] is True
