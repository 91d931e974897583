"""The WebSub hub as a feature: `/websub/hub` (public), its management API, the delivery
service, `fnhub websub`."""

from fnhub.feature import CliGroup, Feature, ServerParts
from fnhub.websub import models
from fnhub.websub.cli import websub_app


def server() -> ServerParts:
    from fnhub.websub import admin, api, area, metrics

    return ServerParts(
        routers=(admin.router,),
        public_routers=(api.public_router,),
        services=(area.service,),
        metrics=(metrics.prometheus,),
    )


WEBSUB = Feature(
    name="websub",
    server=server,
    models=(models,),
    cli=(CliGroup("websub", websub_app),),
)
