"""`@DFF.API(title, **options)`: DataFlux Func's decorator, spelt onto `@fnhub.api`.

The options are renamed and converted, then handed to `fnhub.functions.api`, so a function
exported with `@DFF.API` is found, checked and published exactly like one exported with
`@fnhub.api` (the same marker, the same `FunctionOptions`).
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from fnhub.functions import api

F = TypeVar("F", bound=Callable[..., Any])

#: DataFlux Func's option names that fnhub reads under another name
RENAMED = {
    "is_hidden": "hidden",
    "fixed_cron_expr": "fixed_crontab",
    "delayed_cron_job": "delayed_crontab",
    "api_timeout": "timeout",  # deprecated in DataFlux Func, still accepted there
}

#: older DataFlux Func names, used only when the current one is not given
LEGACY = frozenset({"fixed_crontab", "delayed_crontab", "api_timeout"})

#: DataFlux Func options fnhub has no counterpart for, and what to do instead
UNSUPPORTED = {
    "integration": "fnhub has no integrations: for `autoRun` with a `cronExpr` add a cron job "
    "(`cron_jobs:` in fnhub.yaml); for `signIn` use console users or an endpoint's `function` "
    "auth (docs/http.md)",
    "integration_config": "see `integration`: fnhub has no integrations",
}


#: every option name `@DFF.API` takes: DataFlux Func's and fnhub's
KNOWN = frozenset(inspect.signature(api).parameters) - {"title"} | set(RENAMED) | set(UNSUPPORTED)


def queue_name(queue: int | str) -> str:
    """DataFlux Func numbers its queues (1..15); fnhub names them. Queue N becomes `qN`, so a
    function pinned to a queue keeps its own queue (start a worker with `--queues ...,qN`)."""
    if isinstance(queue, bool) or not isinstance(queue, int | str):
        raise ValueError(f"@DFF.API option `queue`: a number or a name, not {queue!r}")
    if isinstance(queue, int):
        if not 1 <= queue <= 15:
            raise ValueError(
                f"@DFF.API option `queue`: 1..15 (0 is DataFlux Func's own), not {queue}"
            )
        return f"q{queue}"
    return queue


def options_for(title: str | None, options: dict[str, Any]) -> dict[str, Any]:
    """`@fnhub.api` keyword arguments for DataFlux Func's `title` and options."""
    out: dict[str, Any] = {"title": title or ""}
    # the current names first: DataFlux Func takes `fixed_cron_expr or fixed_crontab`
    for name, value in sorted(options.items(), key=lambda item: item[0] in LEGACY):
        if name in UNSUPPORTED:
            raise NotImplementedError(f"@DFF.API option `{name}`: {UNSUPPORTED[name]}")
        if name not in KNOWN:
            close = difflib.get_close_matches(name, sorted(KNOWN), n=1)
            hint = f" (did you mean `{close[0]}`?)" if close else ""
            raise ValueError(f"@DFF.API: unknown option `{name}`{hint}")
        if value is None:
            continue  # DataFlux Func's "not given"
        target = RENAMED.get(name, name)
        if target == "queue":
            value = queue_name(value)
        elif target == "tags":
            value = list(value) if isinstance(value, list | tuple) else value
        out.setdefault(target, value)  # `fixed_cron_expr` wins over `fixed_crontab` alike
    return out


def API(title: str | None = None, **options: Any) -> Callable[[F], F]:
    """Export the decorated function: `@DFF.API("Add", timeout=10, cache_result=60)`."""
    try:
        mark = api(**options_for(title, options))
    except ValueError as exc:  # a value fnhub refuses: say it of the decorator the script used
        raise ValueError(str(exc).replace("@fnhub.api", "@DFF.API")) from None

    def decorate(fn: F) -> F:
        fn = mark(fn)
        name = getattr(fn, "__name__", "")
        # DataFlux Func sets these on its exported functions; some scripts read them
        for attr, value in (
            ("_DFF_FUNC_ID", f"{getattr(fn, '__module__', '')}.{name}"),
            ("_DFF_FUNC_NAME", name),
            ("_DFF_FUNC_TITLE", title),
        ):
            try:
                setattr(fn, attr, value)
            except AttributeError:  # a callable that takes no attributes
                pass
        return fn

    return decorate
