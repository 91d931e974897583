"""Env variables and the store as a feature: `/envs`, `envs:`, `fnhub env`, the store's purge."""

from fnhub.envs import models
from fnhub.envs.cli import env_app
from fnhub.envs.project import apply_envs
from fnhub.feature import CliGroup, Feature, ServerParts


def server() -> ServerParts:
    from fnhub.envs import api

    return ServerParts(routers=(api.router,), services=(api.purge_service,))


ENVS = Feature(
    name="envs",
    server=server,
    sections=(("envs", apply_envs),),
    models=(models,),
    cli=(CliGroup("env", env_app),),
)
