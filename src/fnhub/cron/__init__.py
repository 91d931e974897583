"""Cron jobs: a leader-elected beat that fires every tick once (docs/cron.md).

Importing this package stays light (scripts reach it as `fnhub.cron`); the beat, the API and
the CLI live in submodules.
"""

from fnhub.cron.dynamic import clear_expression, get_expression, pause, resume, set_expression

__all__ = ["clear_expression", "get_expression", "pause", "resume", "set_expression"]
