"""`fnhub websub ...`: topics, subscribers, dead letters (with retry) and publishing, read straight
from the database and Redis, like `fnhub tasks`, so it works without the HTTP server's API key.
Changes are audited with the actor `cli`."""

from __future__ import annotations

import json
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.text import Text

from fnhub.cli_output import Column, JsonOpt, fitted_table, out, print_json, show
from fnhub.cli_settings import ProjectOpt, settings_or_exit

websub_app = typer.Typer(
    no_args_is_help=True, help="The WebSub hub: topics, subscribers, dead letters."
)
console = Console()
err = Console(stderr=True)


@contextmanager
def _views(project: Path | None) -> Any:
    from fnhub.redis_client import sync_redis
    from fnhub.store.db import Database
    from fnhub.websub.registry import Registry
    from fnhub.websub.views import Views

    settings = settings_or_exit(project)
    db = Database(settings.resolved_db_url())
    db.migrate()
    client = sync_redis(settings)
    try:
        yield Views(settings, Registry(db), client)
    finally:
        client.close()
        db.dispose()


def _time(ts: float | None) -> str:
    return datetime.fromtimestamp(ts).strftime("%m-%d %H:%M:%S") if ts else "-"


@websub_app.command()
def topics(project: ProjectOpt = None, as_json: JsonOpt = False) -> None:
    """Topics: registered ones, and any with subscribers (an open hub registers none), with
    their subscribers, notifications published, stored (not yet delivered to everyone) and
    dropped over the topic's cap."""
    with _views(project) as v:
        rows = v.topics()
    if as_json:
        print_json(rows)
        return
    screen = out()
    columns = [
        Column("topic"), Column("registered", 3), Column("subscribers", 0, "right"),
        Column("notifications", 2, "right"), Column("stored", 4, "right"),
        Column("bytes", 5, "right"), Column("dropped", 6, "right"), Column("last publish", 1),
    ]  # fmt: skip
    table_rows = [
        (t["url"], "yes" if t["registered"] else "no", t["subscribers"], t["notifications"],
         t["stored"], t["stored_bytes"], t["dropped"], _time(t["last_published_at"]))
        for t in rows
    ]  # fmt: skip
    show(screen, fitted_table(screen, columns, table_rows))


@websub_app.command()
def subscribers(
    project: ProjectOpt = None,
    topic: Annotated[str | None, typer.Option(help="only this topic")] = None,
    state: Annotated[str | None, typer.Option(help="active, expired, gone")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Subscriptions: lease expiry, last delivery, failures, backlog."""
    with _views(project) as v:
        rows = v.subscriptions(state, topic)
    if as_json:
        print_json(rows)
        return
    screen = out()
    columns = [
        Column("id", 6), Column("callback"), Column("topic", 1), Column("state"),
        Column("lease ends", 4), Column("last delivery", 2), Column("delivered", 5, "right"),
        Column("failures", 3, "right"), Column("dead", 7, "right"),
        Column("backlog", 8, "right"),
    ]  # fmt: skip
    table_rows = [
        (s["id"], s["callback"], s["topic"], s["state"], _time(s["lease_expires"]),
         _time(s["last_delivery_at"]), s["delivered"], s["failures"], s["dead_letters"],
         s["backlog"])
        for s in rows
    ]  # fmt: skip
    show(screen, fitted_table(screen, columns, table_rows))


@websub_app.command("dead-letters")
def dead_letters(
    project: ProjectOpt = None,
    subscription: Annotated[str | None, typer.Option(help="only this subscription id")] = None,
    limit: Annotated[int, typer.Option(help="how many, newest first")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """Notifications that exhausted their retries."""
    with _views(project) as v:
        rows = v.dead_letters(subscription, limit)
    if as_json:
        print_json(rows)
        return
    screen = out()
    columns = [
        Column("id"), Column("callback"), Column("topic", 2), Column("attempts", 3, "right"),
        Column("last error"), Column("dead since", 1),
    ]  # fmt: skip
    table_rows = [
        (d["id"], d["callback"], d["topic"], d["attempts"], d["last_error"],
         _time(d["created_at"]))
        for d in rows
    ]  # fmt: skip
    show(screen, fitted_table(screen, columns, table_rows))


@websub_app.command()
def failed(
    project: ProjectOpt = None,
    limit: Annotated[int, typer.Option(help="how many, newest first")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """(Un)subscription requests given up after unexpected verification errors."""
    with _views(project) as v:
        rows = v.failed_intents(limit)
    if as_json:
        print_json(rows)
        return
    screen = out()
    columns = [
        Column("mode"), Column("callback"), Column("topic", 2), Column("attempts", 3, "right"),
        Column("reason"), Column("failed at", 1),
    ]  # fmt: skip
    table_rows = [
        (f["mode"], f["callback"], f["topic"], f["attempts"], f["reason"], _time(f["failed_at"]))
        for f in rows
    ]
    show(screen, fitted_table(screen, columns, table_rows))


@websub_app.command()
def retry(dead_letter: int, project: ProjectOpt = None) -> None:
    """Queue a dead letter again in front of its subscription's notifications."""
    from fnhub import audit
    from fnhub.websub.views import Conflict, NotFound

    with _views(project) as v:
        try:
            queued = v.retry_dead_letter(dead_letter)
        except (NotFound, Conflict) as exc:
            err.print(Text("error: ", style="red") + Text(str(exc)), soft_wrap=True)
            raise typer.Exit(1) from exc
        resource = f"websub_dead_letter:{dead_letter}"
        audit.record(v.registry.db, audit.CLI, "websub_dead_letter.retry", resource, None, queued)
    console.print(f"dead letter {dead_letter} queued again")


@websub_app.command()
def publish(
    topic: str,
    content: str,
    project: ProjectOpt = None,
    content_type: Annotated[str | None, typer.Option(help="default text/plain or JSON")] = None,
    json_content: Annotated[bool, typer.Option("--json", help="CONTENT is JSON")] = False,
) -> None:
    """Publish one notification to a topic's subscribers."""
    from fnhub import audit, runtime
    from fnhub.store.db import Database
    from fnhub.websub.policy import url_hash
    from fnhub.websub.script_publish import publish as do_publish

    settings = settings_or_exit(project)
    runtime.init(settings)
    value: Any = json.loads(content) if json_content else content
    position = do_publish(topic, value, content_type)
    db = Database(settings.resolved_db_url())
    try:
        published = {"topic": topic, "position": position, "content_type": content_type}
        resource = f"websub_topic:{url_hash(topic)}"
        audit.record(db, audit.CLI, "websub_topic.publish", resource, None, published)
    finally:
        db.dispose()
    console.print(f"published at {position}")
