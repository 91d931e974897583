"""Cron as a feature: the `/cron-jobs` API, the beat in the server, `cron_jobs:`, `fnhub cron`."""

from fnhub.feature import CliCommand, CliGroup, Feature, ServerParts


def server() -> ServerParts:
    from fnhub.cron import area, metrics

    return ServerParts(routers=(area.router,), services=(area.service,), metrics=(metrics.metrics,))


CRON_HELP = "Cron jobs: list, add, run, pause, resume."
BEAT_HELP = "Run a cron beat; any number may run, the leader fires each tick once."

CRON = Feature(
    name="cron",
    server=server,
    sections=(("cron_jobs", "fnhub.cron.project:apply_cron_jobs"),),
    models=("fnhub.cron.models",),
    cli=(
        CliGroup("cron", "fnhub.cron.cli:cron_app", CRON_HELP),
        CliCommand("beat", "fnhub.cron.cli:beat", BEAT_HELP),
    ),
)
