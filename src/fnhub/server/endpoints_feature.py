"""Endpoints as a feature: the `endpoints:` section and `fnhub endpoints` (their routes and
registry are the server's own, `server/endpoints.py`)."""

from fnhub.endpoints_cli import endpoints_app
from fnhub.feature import CliGroup, Feature
from fnhub.server.endpoints_project import apply_endpoints

ENDPOINTS = Feature(
    name="endpoints",
    sections=(("endpoints", apply_endpoints),),
    cli=(CliGroup("endpoints", endpoints_app),),
)
