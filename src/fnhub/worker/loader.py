"""Finding the function a task names, loading script versions from Redis, cached per version.

A child keeps the active-scripts map it last read. It re-reads it when a task names a version it
does not know, and at most every `REFRESH_SECONDS` otherwise, so an imported helper script that
changed is picked up within seconds without a Redis round trip per task. Whenever the map changes,
imported script modules are dropped so imports load the new versions.
"""

from __future__ import annotations

import time
import types
from collections.abc import Callable
from typing import Any, NamedTuple

import redis

from fnhub.functions import API_ATTR, FunctionInfo
from fnhub.keys import Keys
from fnhub.redis_replies import as_optional_bytes
from fnhub.scripts.languages import JAVASCRIPT, PYTHON
from fnhub.scripts.modules import HASH_ATTR, build_module, forget_script_modules, install_finder
from fnhub.scripts.registry import ActiveScript, ActiveScripts, read_active

REFRESH_SECONDS = 2.0


class UnknownFunction(LookupError):
    pass


class JsFunction(NamedTuple):
    """A JavaScript function a task names: which script version, which export."""

    script: str
    hash: str
    name: str
    info: FunctionInfo


class ScriptLoadError(Exception):
    pass


class WorkerScripts:
    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.redis = client
        self.keys = keys
        self.active = ActiveScripts()
        self.refreshed_at = 0.0
        self.modules: dict[tuple[str, str], types.ModuleType] = {}
        self.resolved: dict[tuple[str, str], tuple[Callable[..., Any], FunctionInfo]] = {}
        #: (ref, version) → its JavaScript function, or None for a Python one
        self.js_resolved: dict[tuple[str, str], JsFunction | None] = {}
        install_finder(self._lookup_import)

    def refresh(self) -> None:
        active = read_active(self.redis, self.keys, self.active)
        self.refreshed_at = time.monotonic()
        if active is not self.active:
            self.active = active
            self.modules.clear()
            self.resolved.clear()
            self.js_resolved.clear()
            forget_script_modules()

    def _lookup_import(self, name: str) -> tuple[str, str] | None:
        script = self.active.scripts.get(name)
        if script is None or script.language != PYTHON:  # Python imports Python scripts only
            return None
        code = self.code(name, script.hash)
        return None if code is None else (code, script.hash)

    def code(self, name: str, hash_: str) -> str | None:
        raw = as_optional_bytes(self.redis.get(self.keys.script_code(name, hash_)))
        return None if raw is None else raw.decode()

    def function(self, ref: str, version: str) -> tuple[Callable[..., Any], FunctionInfo]:
        """The function a task names, from a script version loaded once per process."""
        resolved = self.resolved.get((ref, version))
        if resolved is not None and time.monotonic() - self.refreshed_at <= REFRESH_SECONDS:
            return resolved
        resolved = self._resolve(ref, version)
        self.resolved[(ref, version)] = resolved
        return resolved

    def _script(self, ref: str, version: str) -> tuple[str, ActiveScript, str, str]:
        """(script name, its active entry, the version's hash, the function's name) of the
        function a task names, re-reading the active scripts when they may be stale."""
        script_name, _, func_name = ref.rpartition(".")
        script = self.active.scripts.get(script_name)
        stale = time.monotonic() - self.refreshed_at > REFRESH_SECONDS
        if stale or script is None or (version and script.hash != version):
            self.refresh()
            script = self.active.scripts.get(script_name)
        if script is None:
            raise UnknownFunction(f"unknown function '{ref}' (no published script '{script_name}')")
        return script_name, script, version or script.hash, func_name

    def javascript(self, ref: str, version: str) -> JsFunction | None:
        """The JavaScript function a task names, None when its script is Python. (A version
        runs in the language its script has now: a script rewritten in the other language
        keeps no task of its old versions running in the old one.)"""
        key = (ref, version)
        if key in self.js_resolved and time.monotonic() - self.refreshed_at <= REFRESH_SECONDS:
            return self.js_resolved[key]
        name, script, hash_, func_name = self._script(ref, version)
        if script.language != JAVASCRIPT:
            self.js_resolved[(ref, version)] = None
            return None
        info = self.active.function(ref)
        if info is None:
            raise UnknownFunction(f"unknown function '{ref}' (not exported by {name})")
        found = JsFunction(name, hash_, func_name, info)
        self.js_resolved[(ref, version)] = found
        return found

    def active_javascript(self) -> dict[str, str]:
        """name → hash of every active JavaScript script (what a script may `require`)."""
        return {n: s.hash for n, s in self.active.scripts.items() if s.language == JAVASCRIPT}

    def _resolve(self, ref: str, version: str) -> tuple[Callable[..., Any], FunctionInfo]:
        script_name, script, hash_, func_name = self._script(ref, version)
        module = self.modules.get((script_name, hash_))
        if module is None:
            code = self.code(script_name, hash_)
            if code is None:
                raise UnknownFunction(f"script version {script_name}@{hash_[:8]} is not published")
            try:
                module = build_module(script_name, code, hash_)
            except BaseException as exc:
                raise ScriptLoadError(
                    f"loading script {script_name}@{hash_[:8]} failed: {type(exc).__name__}: {exc}"
                ) from exc
            self.modules[(script_name, hash_)] = module
        fn = module.__dict__.get(func_name)
        if fn is None or not hasattr(fn, API_ATTR):
            raise UnknownFunction(f"unknown function '{ref}' (not exported by {script_name})")
        info = self.active.function(ref)
        if info is None or getattr(module, HASH_ATTR) != script.hash:
            from fnhub.functions import describe

            info = describe(script_name, fn)
        return fn, info
