"""Cron's series in `/metrics`: ticks fired and skipped per job, and how late they fired.

The leading beat counts them in memory and adds them to the cluster-wide `keys.stats` about
once a second (`fnhub.cron.beat`), so they survive a change of leader and read the same from any
server. Labelled by job id (configured names) and a fixed set of reasons.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from prometheus_client.metrics_core import Metric
from sqlalchemy import select

from fnhub.cron.models import CronJob
from fnhub.server.context import ServerContext
from fnhub.server.metric_families import StatsView, counter, latency_histogram

#: why a tick did not run: its previous run still going (overlap: skip), paused, or missed
#: (later than `cron_misfire_grace_seconds`: the beat was down or stalled)
SKIP_REASONS = ("overlap", "paused", "missed")


def _job_ids(ctx: ServerContext) -> list[str]:
    with ctx.db.session() as session:
        return list(session.execute(select(CronJob.id)).scalars())


async def metrics(ctx: ServerContext, view: StatsView) -> Iterable[Metric]:
    counts = view.counts("cron", 2)
    jobs = await asyncio.to_thread(_job_ids, ctx)
    fired: dict[tuple[str, ...], int] = {(job,): 0 for job in jobs}
    skipped: dict[tuple[str, ...], int] = {}
    for (job, what), n in counts.items():
        if what == "fired":
            fired[job,] = n
        elif what.startswith("skipped_") and what[8:] in SKIP_REASONS:
            skipped[job, what[8:]] = n
    return [
        counter(
            "fnhub_cron_fired", "Cron ticks whose tasks were enqueued, per job", ["job"], fired
        ),
        counter(
            "fnhub_cron_skipped",
            "Cron ticks that did not run, per job and reason: overlap (the previous run was "
            "still going), paused, missed (the beat was down or stalled past the grace period)",
            ["job", "reason"],
            skipped,
        ),
        latency_histogram(
            "fnhub_cron_delay_seconds",
            "How late each fired tick was enqueued (send time - scheduled time), per job",
            ["job"],
            view,
            "cd",
        ),
    ]
