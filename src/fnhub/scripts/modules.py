"""Turning script code into Python modules, and the import hook that lets scripts import scripts.

Script modules are named by the script name (`import helpers`), compiled under a filename such as
`<script helpers@1a2b3c4d>` whose lines are registered in `linecache`, so tracebacks show the
user's code. Names are resolved through a `lookup` callable, so the same finder serves publishing
(pending code first) and workers (active versions).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import linecache
import sys
import types
from collections.abc import Callable

HASH_ATTR = "__fnhub_hash__"
SCRIPT_ATTR = "__fnhub_script__"

#: name → (code, hash) of the version an `import name` should load, or None if not a script
Lookup = Callable[[str], tuple[str, str] | None]


def script_filename(name: str, hash_: str) -> str:
    return f"<script {name}@{hash_[:8]}>"


def build_module(name: str, code: str, hash_: str) -> types.ModuleType:
    """Compile and execute `code` as a fresh module (not registered in sys.modules)."""
    module = types.ModuleType(name)
    _exec_into(module, code, hash_)
    return module


def _exec_into(module: types.ModuleType, code: str, hash_: str) -> None:
    filename = script_filename(module.__name__, hash_)
    linecache.cache[filename] = (len(code), None, code.splitlines(keepends=True), filename)
    module.__file__ = filename
    setattr(module, HASH_ATTR, hash_)
    setattr(module, SCRIPT_ATTR, True)
    _add_dff(module, code)
    exec(compile(code, filename, "exec"), module.__dict__)


def _add_dff(module: types.ModuleType, code: str) -> None:
    """DataFlux Func's `DFF` (and `dff`, `print_var`) in every script, and its built-in
    variables (`_DFF_TASK_ID`...) in those that name one, kept true per task (`fnhub.dff`)."""
    from fnhub.dff import script_globals, variables
    from fnhub.runtime import current_task

    module.__dict__.update(script_globals(module.__name__))
    if variables.MARK in code:
        variables.register(module, current_task.get())


class _ScriptLoader(importlib.abc.Loader):
    def __init__(self, code: str, hash_: str) -> None:
        self.code = code
        self.hash = hash_

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> None:
        return None

    def exec_module(self, module: types.ModuleType) -> None:
        _exec_into(module, self.code, self.hash)


class ScriptFinder(importlib.abc.MetaPathFinder):
    """Resolves top-level imports of script names through `lookup`."""

    def __init__(self, lookup: Lookup) -> None:
        self.lookup = lookup

    def find_spec(
        self, fullname: str, path: object = None, target: object = None
    ) -> importlib.machinery.ModuleSpec | None:
        if "." in fullname:
            return None
        found = self.lookup(fullname)
        if found is None:
            return self._dff_alias(fullname)
        code, hash_ = found
        return importlib.util.spec_from_loader(fullname, _ScriptLoader(code, hash_))

    def _dff_alias(self, fullname: str) -> importlib.machinery.ModuleSpec | None:
        """DataFlux Func's `import set__script` (or `import __script`, the same set's) of a
        script published as `script`: the same module under both names (unless an installed
        module has that name)."""
        _set, sep, name = fullname.partition("__")  # `__script`: a script of the same set
        if not (sep and name.isidentifier()) or name.endswith("__"):
            return None
        if self.lookup(name) is None:
            return None
        if importlib.machinery.PathFinder.find_spec(fullname) is not None:
            return None
        return importlib.util.spec_from_loader(fullname, _AliasLoader(name))


class _AliasLoader(importlib.abc.Loader):
    def __init__(self, name: str) -> None:
        self.name = name
        self.own_spec: importlib.machinery.ModuleSpec | None = None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        module = importlib.import_module(self.name)
        self.own_spec = module.__spec__
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        module.__spec__ = self.own_spec  # the import system gave it the alias's; executed already


def install_finder(lookup: Lookup) -> ScriptFinder:
    finder = ScriptFinder(lookup)
    sys.meta_path.insert(0, finder)
    return finder


def forget_script_modules() -> None:
    """Drop every script module from sys.modules, so the next import loads current versions."""
    for name, module in list(sys.modules.items()):
        if getattr(module, SCRIPT_ATTR, False):
            del sys.modules[name]
