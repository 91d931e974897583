"""A project folder (`fnhub.yaml` + `scripts/`) applied as provisioned resources.

`apply_project` publishes every `scripts/*.py` (unchanged ones keep their version) and hands each
other section of `fnhub.yaml` to the applier registered for it by its area (cron jobs,
connectors, subscriptions...), so this module knows nothing of them. Every change an apply
makes is audited with the actor `project` (`audit.PROJECT`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fnhub import audit
from fnhub.config import Settings, load_project_file
from fnhub.scripts.store import Published, ScriptStore

#: section name in fnhub.yaml → function(settings, section value) applying it
SectionApplier = Callable[[Settings, Any], None]
section_appliers: dict[str, SectionApplier] = {}

#: modules that register their appliers in `section_appliers` when imported
_SECTION_MODULES = ("fnhub.cron.project", "fnhub.websub.project", "fnhub.subscriptions.project")


def _load_section_modules() -> None:
    for name in _SECTION_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name is None or not name.startswith(exc.name):
                raise


def read_scripts(project_dir: Path) -> dict[str, str]:
    folder = project_dir / "scripts"
    if not folder.is_dir():
        return {}
    return {path.stem: path.read_text() for path in sorted(folder.glob("*.py"))}


def apply_project(settings: Settings, store: ScriptStore) -> list[Published]:
    data = load_project_file(settings.project_dir)
    _load_section_modules()
    published = store.publish(
        read_scripts(settings.project_dir), provisioned=True, actor=audit.PROJECT
    )
    first = {"connectors": 0}  # subscriptions and others name connectors
    for section, value in sorted(data.items(), key=lambda kv: first.get(kv[0], 1)):
        if section == "settings":
            continue
        applier = section_appliers.get(section)
        if applier is None:
            known = ", ".join(sorted(["settings", *section_appliers])) or "settings"
            raise ValueError(f"fnhub.yaml: unknown section '{section}' (known: {known})")
        applier(settings, value)
    return published
