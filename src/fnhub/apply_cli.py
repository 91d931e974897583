"""`fnhub apply`: apply the project, say what changed in every section, and which running
servers picked it up (`server/presence.py`), or how to start one."""

from __future__ import annotations

from collections.abc import Iterator

import redis
from rich.console import Console

from fnhub.config import Settings
from fnhub.project import ApplyReport, PartlyApplied, SectionChanges

#: unchanged resources are named only when there are at most this many (else counted)
NAMED_UNCHANGED = 5


def report_lines(report: ApplyReport) -> Iterator[str]:
    """What an apply did, a line per section (rich markup), then a line per changed script."""
    published = [p for p in report.scripts if p.changed]
    counts = [
        f"{len(published)} published" if published else "",
        f"{len(report.removed_scripts)} removed" if report.removed_scripts else "",
        f"{len(report.scripts) - len(published)} unchanged"
        if len(report.scripts) > len(published)
        else "",
    ]
    yield "scripts: " + (", ".join(c for c in counts if c) or "none in scripts/")
    for p in report.scripts:
        names = ", ".join(f.name for f in p.functions) or "no functions"
        state = "[green]published[/green]" if p.changed else "unchanged"
        yield f"  {p.script} v{p.version} {state}: {names}"
    for name in report.removed_scripts:
        yield f"  {name} [yellow]removed[/yellow] (its file is gone from scripts/)"
    for section in report.sections:
        yield section_line(section)


def refusal_lines(exc: PartlyApplied) -> Iterator[str]:
    """What was applied before a section was refused, the reason, and what was not applied."""
    yield from report_lines(exc.report)
    yield f"[red]error:[/red] {exc}"
    sections = ", ".join(s.replace("_", " ") for s in exc.not_applied)
    yield f"not applied: {sections} (what is listed above was applied)"


def section_line(changes: SectionChanges) -> str:
    label = changes.section.replace("_", " ")
    if not changes.counted:
        return f"{label}: applied"
    parts = []
    for kind, names, color in (
        ("created", changes.created, "green"),
        ("updated", changes.updated, "green"),
        ("removed", changes.removed, "yellow"),
    ):
        if names:
            parts.append(f"[{color}]{len(names)} {kind}[/{color}] ({', '.join(names)})")
    if changes.unchanged:
        named = len(changes.unchanged) <= NAMED_UNCHANGED
        listed = f" ({', '.join(changes.unchanged)})" if named else ""
        parts.append(f"{len(changes.unchanged)} unchanged{listed}")
    return f"{label}: " + (", ".join(parts) or "none declared")


def redis_is_up(settings: Settings) -> str | None:
    """None if the project's Redis answers, else why not (in words for the user)."""
    from fnhub.redis_client import redacted_url, redis_url, sync_redis

    client = sync_redis(settings, socket_connect_timeout=3, socket_timeout=3)
    try:
        client.ping()
    except (redis.RedisError, OSError) as exc:
        return f"{redacted_url(redis_url(settings))}: {exc}"
    finally:
        client.close()
    return None


def not_running_message(settings: Settings, why: str) -> str:
    if settings.redis_url:
        return (
            f"cannot reach Redis ({why}); nothing was applied. Start Redis, then run "
            "`fnhub apply` again (servers and workers read the project from it)"
        )
    return (
        f"no `fnhub serve` is running for the project in {settings.project_dir.resolve()} "
        "(its Redis is not up); nothing was applied. Start it with `fnhub serve`: it applies "
        "fnhub.yaml and scripts/ as it starts, and `fnhub apply` updates it while it runs"
    )


def apply_command(settings: Settings, console: Console, err: Console, wait: float) -> int:
    """Run `fnhub apply`; returns the exit code."""
    from fnhub.bootstrap import open_services
    from fnhub.features import FEATURES
    from fnhub.project import apply_project
    from fnhub.scripts.inspect import ScriptError
    from fnhub.server.presence import describe, live_servers, wait_for_pickup

    why = redis_is_up(settings)
    if why is not None:
        err.print(f"[red]error:[/red] {not_running_message(settings, why)}", soft_wrap=True)
        return 3
    services = open_services(settings)
    try:
        try:
            with err.status("applying the project..."):
                report = apply_project(settings, services.scripts, FEATURES)
        except PartlyApplied as exc:
            for line in refusal_lines(exc):
                err.print(line, soft_wrap=True, highlight=False)
            return 1
        except (ScriptError, ValueError) as exc:
            err.print(f"[red]error:[/red] {exc}", soft_wrap=True, highlight=False)
            return 1
        for line in report_lines(report):
            console.print(line, soft_wrap=True, highlight=False)
        if not live_servers(services.redis, services.keys):
            console.print(
                "no running server picked it up: none is running. Start one with "
                "`fnhub serve` (or `fnhub server` beside workers)",
                soft_wrap=True,
                highlight=False,
            )
            return 0
        pickup = wait_for_pickup(services.redis, services.keys, report.revision, wait)
    finally:
        services.close()
    if pickup.picked:
        n = len(pickup.picked)
        names = ", ".join(describe(s) for s in pickup.picked)
        console.print(
            f"picked up by {n} server{'s' if n > 1 else ''} within {pickup.seconds:.2f} s: {names}",
            soft_wrap=True,
            highlight=False,
        )
    if pickup.missing:
        names = ", ".join(describe(s) for s in pickup.missing)
        err.print(
            f"[yellow]not picked up within {wait:g} s by:[/yellow] {names} "
            "(see its log; it reloads when the project revision moves)",
            soft_wrap=True,
            highlight=False,
        )
    return 0
