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
from typing import Any

import redis

from fnhub.functions import API_ATTR, FunctionInfo
from fnhub.keys import Keys
from fnhub.redis_replies import as_optional_bytes
from fnhub.scripts.modules import HASH_ATTR, build_module, forget_script_modules, install_finder
from fnhub.scripts.registry import ActiveScripts, read_active

REFRESH_SECONDS = 2.0


class UnknownFunction(LookupError):
    pass


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
        install_finder(self._lookup_import)

    def refresh(self) -> None:
        active = read_active(self.redis, self.keys, self.active)
        self.refreshed_at = time.monotonic()
        if active is not self.active:
            self.active = active
            self.modules.clear()
            self.resolved.clear()
            forget_script_modules()

    def _lookup_import(self, name: str) -> tuple[str, str] | None:
        script = self.active.scripts.get(name)
        if script is None:
            return None
        code = self._code(name, script.hash)
        return None if code is None else (code, script.hash)

    def _code(self, name: str, hash_: str) -> str | None:
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

    def _resolve(self, ref: str, version: str) -> tuple[Callable[..., Any], FunctionInfo]:
        script_name, _, func_name = ref.rpartition(".")
        script = self.active.scripts.get(script_name)
        stale = time.monotonic() - self.refreshed_at > REFRESH_SECONDS
        if stale or script is None or (version and script.hash != version):
            self.refresh()
            script = self.active.scripts.get(script_name)
        if script is None:
            raise UnknownFunction(f"unknown function '{ref}' (no published script '{script_name}')")
        hash_ = version or script.hash
        module = self.modules.get((script_name, hash_))
        if module is None:
            code = self._code(script_name, hash_)
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
