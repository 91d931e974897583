"""Subscriptions as a feature: their API, the manager running them in the server, and the
`connectors:` and `subscriptions:` sections (connectors first: subscriptions name them)."""

from fnhub.feature import Feature, ServerParts


def server() -> ServerParts:
    from fnhub.subscriptions import area, metrics

    return ServerParts(routers=(area.router,), services=(area.service,), metrics=(metrics.metrics,))


SUBSCRIPTIONS = Feature(
    name="subscriptions",
    server=server,
    sections=(
        ("connectors", "fnhub.subscriptions.project:apply_connectors"),
        ("subscriptions", "fnhub.subscriptions.project:apply_subscriptions"),
    ),
    models=("fnhub.subscriptions.models",),
)
