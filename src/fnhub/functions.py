"""`@fnhub.api(...)`: how a script exports a function, and the metadata published with it."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, TypeVar

import msgspec

F = TypeVar("F", bound=Callable[..., Any])

API_ATTR = "__fnhub_api__"


class FunctionOptions(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Options given to `@fnhub.api`; None means "the platform default"."""

    title: str = ""
    category: str = "general"
    tags: list[str] = []
    timeout: float | None = None
    expires: float | None = None
    queue: str | None = None
    cache_result: float | None = None
    record: bool = True
    record_limit: int | None = None
    retries: int = 0
    retry_delay: float = 1.0
    max_attempts: int | None = None
    dead_letter: bool = False
    fixed_crontab: str | None = None
    delayed_crontab: list[float] = []
    concurrency: int | None = None
    warm: int = 0
    hidden: bool = False


class Param(msgspec.Struct, kw_only=True, omit_defaults=True):
    name: str
    kind: str  # positional_or_keyword | keyword_only | var_keyword | var_positional
    required: bool = True
    default: Any = None
    annotation: str | None = None


class FunctionInfo(msgspec.Struct, kw_only=True, omit_defaults=True):
    """What is published about an exported function; producers validate calls against it."""

    script: str
    name: str
    doc: str = ""
    params: list[Param] = []
    is_async: bool = False
    convention: str = "kwargs"  # kwargs | event_context (Baetyl handler(event, context))
    options: FunctionOptions = msgspec.field(default_factory=FunctionOptions)

    @property
    def ref(self) -> str:
        return f"{self.script}.{self.name}"

    def check_kwargs(self, kwargs: dict[str, Any]) -> str | None:
        """Why these kwargs do not fit the signature, or None when they do."""
        names = {p.name for p in self.params}
        takes_any = any(p.kind == "var_keyword" for p in self.params)
        unknown = sorted(k for k in kwargs if k not in names)
        if unknown and not takes_any:
            return f"{self.ref}() got unexpected keyword argument(s): {', '.join(unknown)}"
        missing = [
            p.name
            for p in self.params
            if p.required
            and p.kind in ("positional_or_keyword", "keyword_only")
            and p.name not in kwargs
        ]
        if missing:
            return f"{self.ref}() missing required argument(s): {', '.join(missing)}"
        return None


def api(
    title: str = "",
    *,
    category: str = "general",
    tags: list[str] | None = None,
    timeout: float | None = None,
    expires: float | None = None,
    queue: str | None = None,
    cache_result: float | None = None,
    record: bool = True,
    record_limit: int | None = None,
    retries: int = 0,
    retry_delay: float = 1.0,
    max_attempts: int | None = None,
    dead_letter: bool = False,
    fixed_crontab: str | None = None,
    delayed_crontab: float | list[float] | None = None,
    concurrency: int | None = None,
    warm: int = 0,
    hidden: bool = False,
) -> Callable[[F], F]:
    """Export the decorated function of a script, so it can be called, scheduled or subscribed.

    `dead_letter=True` sends the function's tasks that failed or timed out (after their
    `retries`) to the dead letters too, where they can be replayed once fixed; without it only
    tasks whose worker died `max_attempts` times end there."""
    options = _typed_options(
        title=title,
        category=category,
        tags=tags or [],
        timeout=timeout,
        expires=expires,
        queue=queue,
        cache_result=cache_result,
        record=record,
        record_limit=record_limit,
        retries=retries,
        retry_delay=retry_delay,
        max_attempts=max_attempts,
        dead_letter=dead_letter,
        fixed_crontab=fixed_crontab,
        delayed_crontab=[] if delayed_crontab is None else _delays(delayed_crontab),
        concurrency=concurrency,
        warm=warm,
        hidden=hidden,
    )
    options.tags = sorted(set(options.tags))
    _validate(options)

    def mark(fn: F) -> F:
        setattr(fn, API_ATTR, options)
        return fn

    return mark


def _delays(value: Any) -> Any:
    """One delay stands for a list of one; anything else is left for the type check."""
    return [value] if isinstance(value, int | float) and not isinstance(value, bool) else value


def _typed_options(**fields: Any) -> FunctionOptions:
    """The options, each checked against its type, so a mistyped one is refused by name
    instead of failing later (or being half-used: a string of tags taken as its letters)."""
    try:
        return msgspec.convert(fields, FunctionOptions)
    except msgspec.ValidationError as exc:
        problem, _, where = str(exc).rpartition(" - at `$.")
        if not problem:
            raise ValueError(f"@fnhub.api: {exc}") from None
        name = where.rstrip("`")
        raise ValueError(f"@fnhub.api option `{name}`: {problem[0].lower()}{problem[1:]}") from None


def _validate(options: FunctionOptions) -> None:
    if options.timeout is not None and not 0 < options.timeout <= 86400:
        raise ValueError(f"timeout must be in (0, 86400] seconds, got {options.timeout}")
    if options.expires is not None and not 0 < options.expires <= 7 * 86400:
        raise ValueError(f"expires must be in (0, 604800] seconds, got {options.expires}")
    if options.retries < 0:
        raise ValueError("retries must be >= 0")
    if options.queue is not None and not options.queue.replace("-", "").replace("_", "").isalnum():
        raise ValueError(f"queue name must be letters, digits, '-' or '_', got {options.queue!r}")
    if options.concurrency is not None and options.concurrency < 1:
        raise ValueError("concurrency must be >= 1")


def _json_default(value: Any) -> Any:
    try:
        msgspec.json.encode(value)
    except (TypeError, msgspec.EncodeError):
        return repr(value)
    return value


def _annotation_text(annotation: Any) -> str | None:
    """An annotation as its source reads ("int", "list[str]"), for a form to show; scripts
    compile with postponed annotations, so most already are text."""
    if annotation is inspect.Parameter.empty:
        return None
    if isinstance(annotation, str):
        return annotation
    return inspect.formatannotation(annotation)


def describe(script: str, fn: Callable[..., Any]) -> FunctionInfo:
    """Build the published metadata of one exported function."""
    options: FunctionOptions = getattr(fn, API_ATTR)
    signature = inspect.signature(fn)
    params = []
    for p in signature.parameters.values():
        params.append(
            Param(
                name=p.name,
                kind=p.kind.name.lower(),
                required=p.default is inspect.Parameter.empty
                and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL),
                default=None if p.default is inspect.Parameter.empty else _json_default(p.default),
                annotation=_annotation_text(p.annotation),
            )
        )
    names = [p.name for p in params]
    convention = "event_context" if names[:2] == ["event", "context"] else "kwargs"
    return FunctionInfo(
        script=script,
        name=fn.__name__,
        doc=inspect.getdoc(fn) or "",
        params=params,
        is_async=inspect.iscoroutinefunction(fn),
        convention=convention,
        options=options,
    )
