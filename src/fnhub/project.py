"""A project folder (`fnhub.yaml` + `scripts/`) applied as provisioned resources.

`apply_project` installs the project's npm packages (`node.packages`), publishes every
`scripts/*.py` and `*.js` (unchanged ones keep their version; a script it published before
whose file is gone is removed) and hands each other section of `fnhub.yaml` to
the applier its feature names (`fnhub.features`: cron jobs, connectors, subscriptions,
endpoints...), so this module knows nothing of them. `${NAME}` in a section's strings is read
from the environment first (`env_refs`). Every change an apply makes is audited with the actor
`project` (`audit.PROJECT`). At the end it bumps the project revision, which running servers
acknowledge once they reloaded (`server/presence.py`), so `fnhub apply` can say who picked it up.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from fnhub import audit, env_refs
from fnhub.config import Settings, load_project_file
from fnhub.node.packages import PackagesError, sync_project
from fnhub.revisions import bump
from fnhub.scripts.inspect import ScriptError
from fnhub.scripts.languages import ScriptFileClash, read_folder
from fnhub.scripts.store import Published, ScriptStore

if TYPE_CHECKING:
    from fnhub.feature import Feature

Change = Literal["created", "updated", "unchanged"]


@dataclass
class SectionChanges:
    """What applying one section did, by resource name, for `fnhub apply` to report."""

    section: str
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    #: False for an applier that does not say what it changed (the section was applied)
    counted: bool = True

    @classmethod
    def of(cls, section: str, names: Mapping[str, list[str]]) -> SectionChanges:
        """From names sorted by what happened to them (created, updated, removed, unchanged)."""
        return cls(
            section,
            created=names["created"],
            updated=names["updated"],
            removed=names["removed"],
            unchanged=names["unchanged"],
        )

    def add(self, name: str, change: Change) -> None:
        getattr(self, change).append(name)

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.removed)


@dataclass
class ApplyReport:
    scripts: list[Published]
    removed_scripts: list[str]
    sections: list[SectionChanges]
    revision: int  # the project revision this apply set; servers acknowledge it


class PartlyApplied(ValueError):
    """A section was refused after the scripts and the sections before it were applied (each
    section is applied on its own). `report` holds what was applied, and the revision was bumped
    so servers serve it; `not_applied` lists the refused section and those after it."""

    def __init__(self, reason: str, report: ApplyReport, not_applied: list[str]) -> None:
        super().__init__(reason)
        self.report = report
        self.not_applied = not_applied


#: applies one `fnhub.yaml` section: function(settings, section value); a feature names it
SectionApplier = Callable[[Settings, Any], SectionChanges | None]


def read_scripts(project_dir: Path) -> tuple[dict[str, str], dict[str, str]]:
    """(name → code, name → language) of `scripts/*.py` and `scripts/*.js` (`.mjs`, `.cjs`)."""
    folder = project_dir / "scripts"
    if not folder.is_dir():
        return {}, {}
    try:
        return read_folder(folder)
    except ScriptFileClash as exc:
        raise ScriptError(exc.script, str(exc)) from None


def publish_scripts(settings: Settings, store: ScriptStore) -> tuple[list[Published], list[str]]:
    """Install the project's npm packages (`package.json` + lock; `node.packages`), publish
    `scripts/` and remove the scripts an earlier apply published whose file is gone (only when
    the folder exists: a project without one leaves published scripts alone)."""
    scripts, languages = read_scripts(settings.project_dir)
    try:
        sync_project(settings, store.redis, store.keys)
    except PackagesError as exc:
        raise ScriptError("package.json", str(exc)) from None
    published = store.publish(scripts, languages=languages, provisioned=True, actor=audit.PROJECT)
    removed: list[str] = []
    if settings.scripts_dir.is_dir():
        for name in store.provisioned_names() - set(scripts):
            if store.delete(name, actor=audit.PROJECT):
                removed.append(name)
    return published, sorted(removed)


def _in_order(names: list[str], features: Sequence[Feature]) -> list[str]:
    """`names` in the file's order, except that a section comes after the sections its feature
    lists before it (`connectors:` before the `subscriptions:` that name them)."""
    before: dict[str, list[str]] = {}
    for feature in features:
        declared = [name for name, _ in feature.sections]
        for i, name in enumerate(declared):
            before[name] = declared[:i]
    order: list[str] = []
    for name in names:
        order += [b for b in before.get(name, []) if b in names and b not in order]
        if name not in order:
            order.append(name)
    return order


def apply_project(
    settings: Settings, store: ScriptStore, features: Sequence[Feature]
) -> ApplyReport:
    """Publish `scripts/`, then apply each section of `fnhub.yaml` by the applier its feature
    names, in the file's order; an unknown section refuses the whole file before anything
    changes."""
    data = load_project_file(settings.project_dir)
    appliers = {name: apply for f in features for name, apply in f.appliers().items()}
    known = sorted(["settings", *appliers])
    for section in data:
        if section != "settings" and section not in appliers:
            raise ValueError(f"fnhub.yaml: unknown section '{section}' (known: {', '.join(known)})")
    sections = {
        name: env_refs.expand(value, f"fnhub.yaml: {name}")
        for name, value in data.items()
        if name != "settings"
    }
    published, removed = publish_scripts(settings, store)
    changes: list[SectionChanges] = []
    # a section an earlier apply declared and the file now leaves out is applied as empty: what
    # it provisioned is removed (reported only when something was)
    declared_before = {
        s.decode() if isinstance(s, bytes) else s
        for s in store.redis.smembers(store.keys.project_sections)
    }
    dropped = [name for name in appliers if name in declared_before and name not in sections]
    order = _in_order([*sections, *dropped], features)
    refused: ValueError | None = None
    not_applied: list[str] = []
    for at, section in enumerate(order):
        try:
            done = appliers[section](settings, sections.get(section))
        except ValueError as exc:
            refused, not_applied = exc, order[at:]
            break
        if section in dropped and (done is None or not done.changed):
            continue
        changes.append(done if done is not None else SectionChanges(section, counted=False))
    # sections left out of the file stay recorded until an apply got to remove what they made
    remembered = set(sections) | (set(dropped) & set(not_applied))
    with store.redis.pipeline() as pipe:
        pipe.delete(store.keys.project_sections)
        if remembered:
            pipe.sadd(store.keys.project_sections, *remembered)
        pipe.execute()
    # bumped even after a refusal: servers must serve what was applied before it
    revision = int(bump(store.redis, store.keys.project_revision))
    report = ApplyReport(published, removed, changes, revision)
    if refused is not None:
        raise PartlyApplied(str(refused), report, not_applied) from refused
    return report
