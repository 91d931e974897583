"""Every `fnhub` command, found by walking the Typer app, with arguments enough to reach its
settings; and which of them are listings (which must take --json). A command added to the CLI
and missing here fails the tests that use this, until it is classified."""

from __future__ import annotations

from typing import Any

import typer
from typer import _click as click

from fnhub.cli import app

#: command path → arguments that get it past argument parsing
ARGUMENTS: dict[tuple[str, ...], list[str]] = {
    ("init",): ["newproj"],
    ("apply",): [],
    ("worker",): [],
    ("serve",): [],
    ("server",): [],
    ("beat",): [],
    ("call",): ["hello.greet"],
    ("status",): [],
    ("cluster",): [],
    ("settings",): [],
    ("keys", "create"): ["ci"],
    ("keys", "list"): [],
    ("keys", "revoke"): ["nokey"],
    ("endpoints", "list"): [],
    ("endpoints", "add"): ["ep", "hello.greet"],
    ("endpoints", "remove"): ["ep"],
    ("env", "list"): [],
    ("env", "get"): ["NAME"],
    ("env", "set"): ["NAME", "value"],
    ("env", "delete"): ["NAME"],
    ("cron", "list"): [],
    ("cron", "add"): ["job", "hello.greet", "* * * * *"],
    ("cron", "remove"): ["job"],
    ("cron", "run"): ["job"],
    ("cron", "pause"): ["job"],
    ("cron", "resume"): ["job"],
    ("websub", "topics"): [],
    ("websub", "subscribers"): [],
    ("websub", "dead-letters"): [],
    ("websub", "failed"): [],
    ("websub", "retry"): ["1"],
    ("websub", "publish"): ["https://example.org/topic", "hello"],
    ("import", "baetyl"): ["missing-service.yml", "--dry-run"],
    ("import", "dff"): ["missing-folder", "--dry-run"],
    ("tasks",): [],
    ("tasks", "show"): ["notask"],
    ("tasks", "dead"): [],
    ("tasks", "replay"): ["notask"],
    ("tasks", "discard"): ["notask"],
    ("users", "create"): ["cleo", "--password-stdin"],
    ("users", "list"): [],
    ("users", "passwd"): ["cleo", "--password-stdin"],
    ("users", "set"): ["cleo", "--role", "viewer"],
    ("users", "remove"): ["cleo"],
}

#: the commands that list things: each takes --json
LISTINGS = {
    ("status",),
    ("cluster",),
    ("settings",),
    ("keys", "list"),
    ("users", "list"),
    ("cron", "list"),
    ("endpoints", "list"),
    ("websub", "topics"),
    ("websub", "subscribers"),
    ("websub", "dead-letters"),
    ("websub", "failed"),
    ("tasks",),
    ("tasks", "dead"),
}


def command_tree() -> dict[tuple[str, ...], Any]:
    """Every runnable command of the app (a group that runs on its own counts) by path."""
    found: dict[tuple[str, ...], Any] = {}

    def walk(command: Any, path: tuple[str, ...]) -> None:
        if not hasattr(command, "commands"):
            found[path] = command
            return
        if path and command.invoke_without_command:
            found[path] = command
        ctx = click.Context(command)
        for name in command.list_commands(ctx):  # the root's lazy groups too (fnhub.cli_lazy)
            walk(command.get_command(ctx, name), (*path, name))

    walk(typer.main.get_command(app), ())
    return found


def all_commands() -> dict[tuple[str, ...], list[str]]:
    missing = sorted(set(command_tree()) - set(ARGUMENTS))
    assert not missing, f"classify the new commands in tests/cli_commands.py: {missing}"
    return dict(ARGUMENTS)


def options_of(path: tuple[str, ...]) -> set[str]:
    command = command_tree()[path]
    return {opt for param in command.params for opt in getattr(param, "opts", [])}
