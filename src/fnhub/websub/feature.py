"""The WebSub hub as a feature: `/websub/hub` (public), its management API, the delivery
service, `fnhub websub`."""

from fnhub.feature import CliGroup, Feature, ServerParts


def server() -> ServerParts:
    from fnhub.websub import admin, api, area, metrics

    return ServerParts(
        routers=(admin.router,),
        public_routers=(api.public_router,),
        services=(area.service,),
        metrics=(metrics.prometheus,),
    )


WEBSUB_HELP = "The WebSub hub: topics, subscribers, dead letters."

WEBSUB = Feature(
    name="websub",
    server=server,
    models=("fnhub.websub.models",),
    cli=(CliGroup("websub", "fnhub.websub.cli:websub_app", WEBSUB_HELP),),
)
