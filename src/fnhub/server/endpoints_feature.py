"""Endpoints as a feature: the `endpoints:` section and `fnhub endpoints` (their routes and
registry are the server's own, `server/endpoints.py`)."""

from fnhub.feature import CliGroup, Feature

ENDPOINTS_HELP = "HTTP endpoints at /e/<name>: list, add, remove."

ENDPOINTS = Feature(
    name="endpoints",
    sections=(("endpoints", "fnhub.server.endpoints_project:apply_endpoints"),),
    cli=(CliGroup("endpoints", "fnhub.endpoints_cli:endpoints_app", ENDPOINTS_HELP),),
)
