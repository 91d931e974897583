"""DataFlux Func's call URLs as a feature: its routes beside fnhub's API (`fnhub.dff.http`)."""

from fnhub.feature import Feature, ServerParts


def _server() -> ServerParts:
    from fnhub.dff.http import api_router, public_router

    return ServerParts(routers=(api_router,), public_routers=(public_router,))


DFF_URLS = Feature(name="dff-urls", server=_server)
