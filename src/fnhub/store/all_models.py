"""Every module that declares tables, so `Base.metadata` is complete for Alembic: the core's,
then each feature's (`Feature.models`, imported with the feature list)."""

from importlib import import_module

from fnhub import audit
from fnhub.accounts import models as accounts_models
from fnhub.features import FEATURES
from fnhub.server import models as server_models
from fnhub.store.models import Base

CORE_MODELS = (server_models, accounts_models, audit)
#: what declares the tables (for a test and the curious: importing is what registers them)
MODEL_MODULES = (*CORE_MODELS, *(import_module(name) for f in FEATURES for name in f.models))

metadata = Base.metadata
