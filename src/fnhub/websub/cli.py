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
from rich.table import Table

websub_app = typer.Typer(
    no_args_is_help=True, help="The WebSub hub: topics, subscribers, dead letters."
)
console = Console()
ProjectOpt = Annotated[Path, typer.Option("--project", "-p", help="project folder")]


@contextmanager
def _views(project: Path) -> Any:
    from fnhub.config import load_settings
    from fnhub.redis_client import sync_redis
    from fnhub.store.db import Database
    from fnhub.websub.registry import Registry
    from fnhub.websub.views import Views

    settings = load_settings(project)
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
def topics(project: ProjectOpt = Path(".")) -> None:
    """Topics: subscribers, notifications published, stored (not yet delivered to everyone) and
    dropped over the topic's cap."""
    with _views(project) as v:
        rows = v.topics()
    table = Table("topic", "registered", "subscribers", "notifications", "stored", "bytes",
                  "dropped", "last publish")  # fmt: skip
    for t in rows:
        table.add_row(
            t["url"], "yes" if t["registered"] else "no", str(t["subscribers"]),
            str(t["notifications"]), str(t["stored"]), str(t["stored_bytes"]), str(t["dropped"]),
            _time(t["last_published_at"]),
        )  # fmt: skip
    console.print(table)


@websub_app.command()
def subscribers(
    project: ProjectOpt = Path("."),
    topic: Annotated[str | None, typer.Option(help="only this topic")] = None,
    state: Annotated[str | None, typer.Option(help="active, expired, gone")] = None,
) -> None:
    """Subscriptions: lease expiry, last delivery, failures, backlog."""
    with _views(project) as v:
        rows = v.subscriptions(state, topic)
    table = Table("id", "callback", "topic", "state", "lease ends", "last delivery", "delivered",
                  "failures", "dead", "backlog")  # fmt: skip
    for s in rows:
        table.add_row(
            s["id"][:12], s["callback"], s["topic"], s["state"], _time(s["lease_expires"]),
            _time(s["last_delivery_at"]), str(s["delivered"]), str(s["failures"]),
            str(s["dead_letters"]), "-" if s["backlog"] is None else str(s["backlog"]),
        )  # fmt: skip
    console.print(table)


@websub_app.command("dead-letters")
def dead_letters(
    project: ProjectOpt = Path("."),
    subscription: Annotated[str | None, typer.Option(help="only this subscription id")] = None,
    limit: int = 50,
) -> None:
    """Notifications that exhausted their retries."""
    with _views(project) as v:
        rows = v.dead_letters(subscription, limit)
    table = Table("id", "callback", "topic", "attempts", "last error", "dead since")
    for d in rows:
        table.add_row(str(d["id"]), d["callback"], d["topic"], str(d["attempts"]),
                      d["last_error"][:60], _time(d["created_at"]))  # fmt: skip
    console.print(table)


@websub_app.command()
def retry(dead_letter: int, project: ProjectOpt = Path(".")) -> None:
    """Queue a dead letter again in front of its subscription's notifications."""
    from fnhub import audit
    from fnhub.websub.views import Conflict, NotFound

    with _views(project) as v:
        try:
            queued = v.retry_dead_letter(dead_letter)
        except (NotFound, Conflict) as exc:
            console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(1) from exc
        resource = f"websub_dead_letter:{dead_letter}"
        audit.record(v.registry.db, audit.CLI, "websub_dead_letter.retry", resource, None, queued)
    console.print(f"dead letter {dead_letter} queued again")


@websub_app.command()
def publish(
    topic: str,
    content: str,
    project: ProjectOpt = Path("."),
    content_type: Annotated[str | None, typer.Option(help="default text/plain or JSON")] = None,
    json_content: Annotated[bool, typer.Option("--json", help="CONTENT is JSON")] = False,
) -> None:
    """Publish one notification to a topic's subscribers."""
    from fnhub import audit, runtime
    from fnhub.config import load_settings
    from fnhub.store.db import Database
    from fnhub.websub.policy import url_hash
    from fnhub.websub.publish import publish as do_publish

    settings = load_settings(project)
    runtime.init(settings, None)  # type: ignore[arg-type]
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
