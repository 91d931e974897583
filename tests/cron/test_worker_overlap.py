"""With a real worker: a run's end clears its running marker, so overlap skipping lets the
next tick fire once the previous run finished (the core hook in `fnhub.queue.add_result`)."""

from __future__ import annotations

import asyncio
import multiprocessing

from fnhub.bootstrap import Services
from fnhub.cli import _run_worker

from .conftest import add_job, running_beat, wait_for


async def test_slow_job_skips_ticks_while_running_then_fires_again(services: Services) -> None:
    settings = services.settings
    add_job(services, id="slow", function="jobs.slow", expr="* * * * * *", kwargs={"seconds": 2.2})
    worker = multiprocessing.get_context("spawn").Process(
        target=_run_worker, args=(settings.model_dump_json(), ["cron"], 1)
    )
    worker.start()
    marker = services.keys.running_marker("cron:slow")
    try:
        async with running_beat(settings, services) as beat:
            await wait_for(lambda: beat.stats.fired >= 1, 10)
            assert services.redis.exists(marker)
            await wait_for(lambda: beat.stats.skipped >= 1, 10)
            await wait_for(lambda: beat.stats.fired >= 2, 25)  # the marker went with the result
            assert beat.stats.skipped >= 1
            await asyncio.sleep(0)
    finally:
        worker.terminate()
        worker.join(20)
    assert worker.exitcode is not None
