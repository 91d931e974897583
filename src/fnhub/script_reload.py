"""`fnhub serve --reload`: publish `scripts/` as soon as a file in it changes.

A thread watches the folder (watchfiles: inotify on Linux, so a save is seen at once) and
publishes it like `fnhub apply` does for scripts: changed files become new versions, new files
new scripts, and scripts whose file was deleted are removed. A broken file changes nothing (the
previous version stays active) and its error is printed. After a change it bumps the project
revision, so servers reload at once (`server/presence.py`) and the next call runs the new code.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from fnhub.bootstrap import open_services
from fnhub.config import Settings
from fnhub.revisions import bump
from fnhub.scripts.languages import SUFFIXES

#: milliseconds of quiet after a change before publishing (editors write files in steps)
DEBOUNCE_MS = 50


class ScriptReloader:
    def __init__(self, settings: Settings, write: Callable[[str], None]) -> None:
        self.settings = settings
        self.write = write
        self.folder = settings.scripts_dir.resolve()

    def _is_script(self, _change: object, path: str) -> bool:
        file = Path(path)
        return file.suffix in SUFFIXES and file.parent == self.folder

    def run(self, stop: threading.Event) -> None:
        from watchfiles import watch

        from fnhub.scripts.inspect import keep_warm

        logging.getLogger("watchfiles").setLevel(logging.WARNING)  # not a line per save
        self.folder.mkdir(parents=True, exist_ok=True)
        keep_warm()
        try:
            for _changes in watch(
                self.folder,
                watch_filter=self._is_script,
                debounce=DEBOUNCE_MS,
                step=25,
                stop_event=stop,
                recursive=False,
                raise_interrupt=False,
            ):
                self.publish()
        finally:
            keep_warm(False)

    def publish(self) -> None:
        from fnhub.project import publish_scripts
        from fnhub.scripts.inspect import ScriptError

        started = time.monotonic()
        services = open_services(self.settings, migrate=False)
        try:
            try:
                published, removed = publish_scripts(self.settings, services.scripts)
            except ScriptError as exc:
                self.write(f"reload: not published, the active versions stay: {exc}")
                return
            except Exception as exc:  # a reload must never end the watcher
                self.write(f"reload: cannot publish scripts/: {type(exc).__name__}: {exc}")
                return
            took = f"in {time.monotonic() - started:.2f} s"
            for p in published:
                if p.changed:
                    names = ", ".join(f.name for f in p.functions) or "no functions"
                    self.write(f"reload: {p.script} v{p.version} published {took}: {names}")
            for name in removed:
                self.write(f"reload: {name} removed (its file is gone)")
            if removed or any(p.changed for p in published):
                bump(services.redis, services.keys.project_revision)
        finally:
            services.close()
