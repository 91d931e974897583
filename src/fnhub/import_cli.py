"""`fnhub import ...`: configurations of other systems (Baetyl v1, DataFlux Func script sets)."""

from fnhub.baetyl.cli import import_app
from fnhub.dff.cli import dff

import_app.command("dff")(dff)

__all__ = ["import_app"]
