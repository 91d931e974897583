"""`fnhub import baetyl`: bring a Baetyl v1 configuration into a project."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

import_app = typer.Typer(no_args_is_help=True, help="Import configurations of other systems.")
console = Console()
err = Console(stderr=True)


@import_app.command("baetyl")
def baetyl(
    files: Annotated[
        list[Path],
        typer.Argument(
            help="Baetyl v1 service.yml files: function manager, runtimes (python/node/sql), hub, "
            "application.yml; recognised by content"
        ),
    ],
    project: Annotated[Path, typer.Option("--project", "-p", help="project folder")] = Path("."),
    code: Annotated[
        list[Path] | None,
        typer.Option("--code", help="folder holding a Python or Node function's code (repeatable)"),
    ] = None,
    connector: Annotated[str, typer.Option(help="name of the MQTT connector to create")] = "baetyl",
    broker: Annotated[
        str | None, typer.Option(help="HOST:PORT of the MQTT broker, instead of hub.address")
    ] = None,
    force: Annotated[bool, typer.Option(help="replace scripts that exist with other code")] = False,
    dry_run: Annotated[bool, typer.Option(help="print the result, write nothing")] = False,
) -> None:
    """Convert Baetyl rules, functions and hub routes into fnhub.yaml and scripts/."""
    import yaml

    from fnhub.baetyl.importer import BaetylImportError, convert, write_project

    try:
        out = convert(files, code_dirs=code or [], connector=connector, broker=broker)
        if dry_run:
            console.print(
                yaml.safe_dump(
                    {"connectors": out.connectors, "subscriptions": out.subscriptions},
                    sort_keys=False,
                ),
                end="",
            )
            for name in out.scripts:
                console.print(f"would write scripts/{name}")
        else:
            for line in write_project(project, out, force=force) or ["nothing changed"]:
                console.print(line)
    except BaetylImportError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    for note in out.notes:
        console.print(f"[yellow]manual:[/yellow] {note}")
    if not dry_run:
        console.print("next: review fnhub.yaml, then `fnhub apply` (or restart `fnhub serve`)")
