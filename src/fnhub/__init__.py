"""fnhub: run Python functions on HTTP calls, cron ticks and broker messages.

This module is also the SDK that scripts import:

    import fnhub

    @fnhub.api("Say hello", timeout=5)
    def hello(name: str = "world"):
        fnhub.cache.incr("greetings")
        return f"hello {name}"
"""

from fnhub.cache import cache
from fnhub.context import context
from fnhub.functions import api
from fnhub.response import Response

__version__ = "0.1.0"
__all__ = [
    "AsyncClient",
    "Client",
    "Response",
    "api",
    "cache",
    "context",
    "env",
    "errors",
    "log",
    "store",
]

import logging as _logging

#: a logger whose output is captured into the task record
log = _logging.getLogger("fnhub.script")


def __getattr__(name: str) -> object:
    """`fnhub.cron` and `fnhub.websub` (script-side APIs), `fnhub.errors`, `fnhub.env` and
    `fnhub.store` (which import SQLAlchemy) and the HTTP clients (`fnhub.Client`,
    `fnhub.AsyncClient`, which import httpx) are imported on first use, not by every script."""
    import importlib

    if name in ("cron", "websub", "errors", "store"):
        return importlib.import_module(f"fnhub.{name}")
    if name == "env":  # fnhub.env("NAME", default); kept, so later reads skip this function
        from fnhub.envs.script import env

        globals()["env"] = env
        return env
    if name in ("Client", "AsyncClient"):
        return getattr(importlib.import_module("fnhub.client"), name)
    if name == "connector":  # fnhub.connector("name").publish(topic, message, **options)
        return importlib.import_module("fnhub.connections").connector
    raise AttributeError(f"module 'fnhub' has no attribute {name!r}")
