"""Env variables and the store as a feature: `/envs`, `envs:`, `fnhub env`, the store's purge."""

from fnhub.feature import CliGroup, Feature, ServerParts


def server() -> ServerParts:
    from fnhub.envs import api

    return ServerParts(routers=(api.router,), services=(api.purge_service,))


ENV_HELP = "Env variables scripts read with fnhub.env: list, get, set, delete."

ENVS = Feature(
    name="envs",
    server=server,
    sections=(("envs", "fnhub.envs.project:apply_envs"),),
    models=("fnhub.envs.models",),
    cli=(CliGroup("env", "fnhub.envs.cli:env_app", ENV_HELP),),
)
