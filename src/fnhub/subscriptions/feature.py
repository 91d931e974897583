"""Subscriptions as a feature: their API, the manager running them in the server, and the
`connectors:` and `subscriptions:` sections (connectors first: subscriptions name them)."""

from fnhub.feature import Feature
from fnhub.subscriptions import area, models
from fnhub.subscriptions.project import apply_connectors, apply_subscriptions

SUBSCRIPTIONS = Feature(
    name="subscriptions",
    routers=(area.router,),
    services=(area.service,),
    sections=(("connectors", apply_connectors), ("subscriptions", apply_subscriptions)),
    models=(models,),
)
