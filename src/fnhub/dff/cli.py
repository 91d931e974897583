"""`fnhub import dff DIR`: bring DataFlux Func script sets into a project."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

console = Console()
err = Console(stderr=True)


def dff(
    folder: Annotated[
        Path,
        typer.Argument(
            help="folder holding one folder per script set: its .py scripts and optionally "
            "one YAML or JSON file with its connectors, envVariables, cronJobs, syncAPIs and "
            "asyncAPIs in DataFlux Func's field names"
        ),
    ],
    project: Annotated[Path, typer.Option("--project", "-p", help="project folder")] = Path("."),
    force: Annotated[
        bool, typer.Option(help="replace scripts and fnhub.yaml entries that exist otherwise")
    ] = False,
    dry_run: Annotated[bool, typer.Option(help="print the result, write nothing")] = False,
) -> None:
    """Convert DataFlux Func script sets into scripts/ and fnhub.yaml."""
    import yaml

    from fnhub.dff.importer import DffImportError, convert, write_project

    try:
        out = convert(folder)
        if dry_run:
            sections = {
                "connectors": out.connectors,
                "subscriptions": out.subscriptions,
                "envs": out.envs,
                "cron_jobs": out.cron_jobs,
                "endpoints": out.endpoints,
            }
            text = yaml.safe_dump({k: v for k, v in sections.items() if v}, sort_keys=False)
            console.print(escape(text), end="")
            for name in out.scripts:
                console.print(f"would write scripts/{name}")
        else:
            for line in write_project(project, out, force=force) or ["nothing changed"]:
                console.print(escape(line))
    except DffImportError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from exc
    for note in out.notes:
        console.print(f"[yellow]manual:[/yellow] {escape(note)}", soft_wrap=True)
    if not dry_run:
        console.print("next: review fnhub.yaml, then `fnhub apply` (or restart `fnhub serve`)")
