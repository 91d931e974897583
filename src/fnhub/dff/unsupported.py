"""DataFlux Func members fnhub does not offer, each with what to use instead.

Using one raises NotImplementedError with that advice (never a bare AttributeError), so a
ported script fails on the line that needs changing, saying how.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn

_GUANCE = (
    "the Guance / TrueWatch clients are not part of fnhub: install their SDK in the worker's "
    "environment and call it from the script"
)
_ENTITIES = (
    "fnhub's endpoints and cron jobs are managed with `fnhub.yaml`, the CLI or the HTTP API "
    "(docs/http.md, docs/cron.md), not from scripts; queue the function itself with "
    "DFF.FUNC('script.func', kwargs)"
)

#: member (or member.method) → what to do instead
ALTERNATIVES: dict[str, str] = {
    "SYS_DB": "fnhub does not give scripts its own database: open a connection of your own "
    "(SQLAlchemy, a driver) with credentials from DFF.ENV",
    "SYS_CACHE_DB": "use DFF.CACHE (or fnhub.cache): the same Redis, under scoped keys",
    "GUANCE_OPENAPI": _GUANCE,
    "DATAKIT": _GUANCE,
    "DATAWAY": _GUANCE,
    "EXTRA_GUANCE_DATA": "fnhub uploads nothing to Guance: task records are in fnhub "
    "(`fnhub tasks`, GET /api/v1/tasks) and metrics at /metrics",
    "TOOLKIT": "DataFlux Func's internal utilities are not part of fnhub: use the standard "
    "library (json, hashlib, datetime...)",
    "SQL": "fnhub has no SQL formatter: pass parameters to your database driver instead",
    "BLUEPRINT": "fnhub has no Blueprints: write the function as a script and queue it with "
    "DFF.FUNC('script.func', kwargs)",
    "SYNC_API": _ENTITIES,
    "ASYNC_API": _ENTITIES,
    "AUTH_LINK": _ENTITIES,
    "BATCH": _ENTITIES,
    "DFF.CRON_JOB.call": "run a cron job now with `fnhub cron run JOB` or "
    "POST /api/v1/cron-jobs/{id}/run; or queue its function with DFF.FUNC",
    "DFF.CRON_JOB.get": "cron jobs are read with `fnhub cron list` or GET /api/v1/cron-jobs",
    "DFF.CRON_JOB.save": "cron jobs are written with `fnhub.yaml`, `fnhub cron add` or "
    "PUT /api/v1/cron-jobs/{id}",
    "DFF.CRON_JOB.query": "cron jobs are listed with `fnhub cron list` or GET /api/v1/cron-jobs",
}


def message(name: str) -> str:
    key = name.removeprefix("DFF.") if name.removeprefix("DFF.") in ALTERNATIVES else name
    advice = ALTERNATIVES.get(key, "see docs/dff.md for what fnhub offers instead")
    shown = name if name.startswith("DFF.") else f"DFF.{name}"
    return f"{shown} is not supported by fnhub: {advice}"


def fail(name: str) -> NoReturn:
    raise NotImplementedError(message(name))


def unsupported(name: str) -> Callable[..., Any]:
    """A method that raises NotImplementedError naming the alternative to `name`."""

    def method(*_args: Any, **_kwargs: Any) -> NoReturn:
        fail(name)

    method.__name__ = name.rpartition(".")[2]
    method.__doc__ = message(name)
    return method
