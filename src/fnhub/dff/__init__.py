"""`DFF`: DataFlux Func's script API, spelt onto fnhub's own SDK.

Every script module gets `DFF` and its lower-case alias `dff` (and `print_var`) in its globals
(`scripts.modules` calls `script_globals`), so a DataFlux Func script runs without an import.
Each member delegates to fnhub: `DFF.API` is `@fnhub.api` with DataFlux Func's option names,
`DFF.CACHE` works on `fnhub.cache`'s keys, `DFF.CONN(id)` publishes through
`fnhub.connector(name)`, `DFF.RESP` is a `fnhub.Response`, `DFF.FUNC` queues a task the way
every trigger does, `DFF.CRON_JOB` is `fnhub.cron`, `DFF.ENV` / `DFF.STORE` are `fnhub.env` /
`fnhub.store`. Members fnhub does not offer raise NotImplementedError naming the alternative
(`unsupported`). docs/dff.md lists every member.

Importing this package is cheap (every worker imports it with its first script); what a
member needs beyond that is imported when it is first used.
"""

from __future__ import annotations

import difflib
from typing import Any

from fnhub.dff import unsupported
from fnhub.dff.api import API
from fnhub.dff.cache import DFFCache
from fnhub.dff.calls import call_func
from fnhub.dff.connectors import ConnectorHelper
from fnhub.dff.cron_job import CronJobHelper
from fnhub.dff.helpers import (
    ConfigHelper,
    ContextHelper,
    EnvHelper,
    StoreHelper,
    TaskView,
    log,
    print_var,
    sign,
)
from fnhub.dff.responses import (
    DFFRedirect,
    DFFResponse,
    DFFResponseFile,
    DFFResponseLargeData,
    resource_path,
)
from fnhub.dff.threads import ThreadHelper


class DFFObject:
    """The `DFF` object; every member also answers to its lower-case name (`dff.cache`)."""

    API = staticmethod(API)
    CACHE = DFFCache()
    CONN = SRC = ConnectorHelper()
    ENV = EnvHelper()
    STORE = StoreHelper()
    CTX = ContextHelper()
    CONFIG = ConfigHelper()
    LOG = staticmethod(log)
    VAR = staticmethod(print_var)
    EVAL = staticmethod(eval)
    EXEC = staticmethod(exec)
    RESP = DFFResponse
    RESP_FILE = DFFResponseFile
    RESP_LARGE_DATA = DFFResponseLargeData
    REDIRECT = DFFRedirect
    RSRC = staticmethod(resource_path)
    SIGN = staticmethod(sign)
    FUNC = staticmethod(call_func)
    THREAD = ThreadHelper()
    CRON_JOB = CRONTAB_CONFIG = CronJobHelper()
    TASK = TaskView()

    def __init__(self, script: str | None = None) -> None:
        """`script`: the script whose globals hold this object; its `CACHE` and `STORE` then
        default to that script's scope, as each script's `DFF` does in DataFlux Func."""
        if script is not None:
            own: dict[str, object] = {"CACHE": DFFCache(script), "STORE": StoreHelper(script)}
            for name, member in own.items():
                setattr(self, name, member)
                setattr(self, name.lower(), member)

    def __getattr__(self, name: str) -> Any:
        """Only names that are no member get here: an unsupported one raises
        NotImplementedError with its alternative, an unknown one an AttributeError naming
        the nearest members."""
        if name.startswith("_"):
            raise AttributeError(name)
        upper = name.upper()
        if upper in unsupported.ALTERNATIVES:
            unsupported.fail(upper)
        close = difflib.get_close_matches(upper, MEMBERS, n=3)
        hint = f"; did you mean {', '.join('DFF.' + c for c in close)}?" if close else ""
        raise AttributeError(
            f"DFF.{name} is not a DataFlux Func member fnhub knows{hint} (docs/dff.md lists "
            "every member)"
        )

    def __dir__(self) -> list[str]:
        return sorted({*MEMBERS, *(m.lower() for m in MEMBERS)})

    def __repr__(self) -> str:
        return "<DFF: DataFlux Func's script API on fnhub>"


#: every supported member's name
MEMBERS = tuple(n for n in vars(DFFObject) if n.isupper())
for _name in MEMBERS:
    setattr(DFFObject, _name.lower(), vars(DFFObject)[_name])
del _name

DFF = DFFObject()


def script_globals(script: str) -> dict[str, Any]:
    """What script `script`'s module starts with: `DFF`, `dff` and `print_var`."""
    own = DFFObject(script)
    return {"DFF": own, "dff": own, "print_var": print_var}


__all__ = ["DFF", "MEMBERS", "DFFObject", "script_globals"]
