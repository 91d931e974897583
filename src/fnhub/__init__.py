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
__all__ = ["Response", "api", "cache", "context", "log"]

import logging as _logging

#: a logger whose output is captured into the task record
log = _logging.getLogger("fnhub.script")
