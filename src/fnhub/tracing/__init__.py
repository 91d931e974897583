"""OpenTelemetry traces across trigger → queue → worker → publish, off unless configured.

The switch and nothing else: this module imports no OpenTelemetry package. While `tracing` is
"none" (the default) `hooks` stays None, and every place that would record a span costs one
attribute read and an `is None` test (no span objects, no context variables, no imports).
`configure` with `tracing: otlp | file` imports `fnhub.tracing.otel` (the `otel` extra), whose
`Hooks` make the spans; the trace context crosses the queue as the W3C `traceparent` string in
`Task.trace`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fnhub.config import Settings
    from fnhub.tracing.otel import Hooks

#: the configured tracer's span makers; None while tracing is off
hooks: Hooks | None = None


class TracingUnavailable(RuntimeError):
    """`tracing` asks for OpenTelemetry, which is not installed."""


def check(settings: Settings) -> None:
    """TracingUnavailable now if `tracing` needs what is not installed: a worker supervisor
    says so once, rather than through children that die at start, one after another."""
    if settings.tracing != "none":
        try:
            import fnhub.tracing.otel  # noqa: F401
        except ImportError as exc:
            raise _unavailable(settings, exc) from exc


def _unavailable(settings: Settings, exc: ImportError) -> TracingUnavailable:
    return TracingUnavailable(
        f"tracing: {settings.tracing} needs OpenTelemetry ({exc}): pip install 'fnhub[otel]'"
    )


def configure(settings: Settings, role: str) -> None:
    """Turn tracing on for this process (once; later calls keep the first configuration)."""
    global hooks
    if settings.tracing == "none" or hooks is not None:
        return
    try:
        from fnhub.tracing.otel import Hooks
    except ImportError as exc:
        raise _unavailable(settings, exc) from exc
    hooks = Hooks.create(settings, role)


def shutdown() -> None:
    """Export what is still buffered and stop (a role's exit); tracing is off afterwards."""
    global hooks
    current, hooks = hooks, None
    if current is not None:
        current.shutdown()


__all__ = ["TracingUnavailable", "check", "configure", "hooks", "shutdown"]
