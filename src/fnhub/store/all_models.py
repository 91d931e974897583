"""Imports every module that declares tables, so `Base.metadata` is complete for Alembic."""

import importlib

from fnhub.store.models import Base

_MODEL_MODULES = (
    "fnhub.server.models",
    "fnhub.accounts.models",
    "fnhub.audit",
    "fnhub.subscriptions.models",
    "fnhub.cron.models",
    "fnhub.websub.models",
)

for _name in _MODEL_MODULES:
    try:
        importlib.import_module(_name)
    except ModuleNotFoundError as exc:  # an area without tables yet
        if exc.name is None or not _name.startswith(exc.name):
            raise

metadata = Base.metadata
