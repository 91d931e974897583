"""Cron as a feature: the `/cron-jobs` API, the beat in the server, `cron_jobs:`, `fnhub cron`."""

from fnhub.cron import models
from fnhub.cron.cli import beat, cron_app
from fnhub.cron.project import apply_cron_jobs
from fnhub.feature import CliCommand, CliGroup, Feature, ServerParts


def server() -> ServerParts:
    from fnhub.cron import area, metrics

    return ServerParts(routers=(area.router,), services=(area.service,), metrics=(metrics.metrics,))


CRON = Feature(
    name="cron",
    server=server,
    sections=(("cron_jobs", apply_cron_jobs),),
    models=(models,),
    cli=(CliGroup("cron", cron_app), CliCommand("beat", beat)),
)
