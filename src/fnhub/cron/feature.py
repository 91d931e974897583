"""Cron as a feature: the `/cron-jobs` API, the beat in the server, `cron_jobs:`, `fnhub cron`."""

from fnhub.cron import area, models
from fnhub.cron.cli import beat, cron_app
from fnhub.cron.project import apply_cron_jobs
from fnhub.feature import CliCommand, CliGroup, Feature

CRON = Feature(
    name="cron",
    routers=(area.router,),
    services=(area.service,),
    sections=(("cron_jobs", apply_cron_jobs),),
    models=(models,),
    cli=(CliGroup("cron", cron_app), CliCommand("beat", beat)),
)
