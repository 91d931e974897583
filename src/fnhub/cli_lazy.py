"""Command groups imported only when they run: `fnhub --help` and `fnhub server` skip the
modules of `fnhub cron`, `fnhub users`, `fnhub import`... (each pulls in its own stack).

`LazyGroup` is the root command's click group: it lists the lazy entries (`CliGroup`,
`CliCommand`: a name, "module:attribute" and the line `--help` shows) beside the commands
registered the usual way, and imports an entry's module the first time click asks for that
command to run it (or to complete or show its own help). Listing them in the root's help uses
the entry's line and imports nothing.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any

import typer
import typer.main
from typer import _click as click
from typer.core import TyperCommand, TyperGroup

from fnhub.feature import CliCommand, CliGroup

Entry = CliGroup | CliCommand


def load(entry: Entry) -> click.Command:
    """The click command of an entry, importing its module."""
    module, _, attribute = entry.target.partition(":")
    target = getattr(importlib.import_module(module), attribute)
    if isinstance(entry, CliGroup):
        command = typer.main.get_command(target)
    else:
        single = typer.Typer()
        single.command(entry.name)(target)
        command = typer.main.get_command(single)
    command.name = entry.name
    return command


class LazyGroup(TyperGroup):
    """A `TyperGroup` that also holds `entries`, loaded on first use."""

    entries: Sequence[Entry] = ()

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._lazy = {entry.name: entry for entry in self.entries}
        self._listing = False

    def list_commands(self, ctx: click.Context) -> list[str]:
        eager = super().list_commands(ctx)
        return [*eager, *(name for name in self._lazy if name not in eager)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = self._lazy.get(cmd_name)
        if entry is None or cmd_name in self.commands:
            return super().get_command(ctx, cmd_name)
        if self._listing:  # a line of the root's help: its text, nothing imported
            return TyperCommand(name=cmd_name, help=entry.help, short_help=entry.help)
        command = self.commands[cmd_name] = load(entry)
        return command

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False
