"""The WebSub hub as a feature: `/websub/hub` (public), its management API, the delivery
service, `fnhub websub`."""

from fnhub.feature import CliGroup, Feature
from fnhub.websub import area, models
from fnhub.websub.admin import router
from fnhub.websub.api import public_router
from fnhub.websub.cli import websub_app

WEBSUB = Feature(
    name="websub",
    routers=(router,),
    public_routers=(public_router,),
    services=(area.service,),
    models=(models,),
    cli=(CliGroup("websub", websub_app),),
)
