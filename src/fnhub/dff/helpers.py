"""The smaller `DFF.*` members: CTX, LOG / VAR (`print_var`), TASK, CONFIG, SIGN, ENV, STORE.

`DFF.ENV` and `DFF.STORE` are thin spellings of `fnhub.env` and `fnhub.store`, imported when
first used.
"""

from __future__ import annotations

import copy
import hashlib
import os
import sys
from typing import Any

from fnhub import runtime
from fnhub.dff import variables


class ContextHelper:
    """`DFF.CTX`: a dict for the running task (has/get/get_all/set/delete/clear), emptied when
    another task starts using it."""

    def __init__(self) -> None:
        self._task_id: str | None = None
        self._data: dict[str, Any] = {}

    def _current(self) -> dict[str, Any]:
        task = runtime.current_task.get()
        task_id = task.id if task is not None else None
        if task_id != self._task_id:
            self._task_id, self._data = task_id, {}
        return self._data

    def __call__(self, key: str) -> Any:
        return self.get(key)

    def has(self, key: str) -> bool:
        return key in self._current()

    def get(self, key: str) -> Any:
        return copy.deepcopy(self._current().get(key))

    def get_all(self) -> dict[str, Any]:
        return copy.deepcopy(self._current())

    def set(self, key: str, value: Any) -> None:
        self._current()[key] = value

    def delete(self, key: str) -> Any:
        return self._current().pop(key, None)

    def clear(self) -> None:
        self._current().clear()


def log(*args: Any, **kwargs: Any) -> None:
    """`DFF.LOG`: a line in the task's output, as `print`."""
    print(*args, **kwargs)


def print_var(*args: Any, **kwargs: Any) -> None:
    """`DFF.VAR` / `print_var`: each value's type, text and size, one line each."""
    for value in args:
        log(f"[VAR] type=`{type(value)}`, value=`{value}`, obj_size=`{sys.getsizeof(value)}`")
    for name, value in kwargs.items():
        log(
            f"[VAR] {name}: type=`{type(value)}`, value=`{value}`, "
            f"obj_size=`{sys.getsizeof(value)}`"
        )


class TaskView:
    """`DFF.TASK`: the running task under DataFlux Func's attribute names (and fnhub's task
    itself as `.task`)."""

    _NAMES = {
        "task_id": "_DFF_TASK_ID",
        "root_task_id": "_DFF_ROOT_TASK_ID",
        "script_set_id": "_DFF_SCRIPT_SET_ID",
        "script_id": "_DFF_SCRIPT_ID",
        "func_id": "_DFF_FUNC_ID",
        "func_name": "_DFF_FUNC_NAME",
        "call_chain": "_DFF_FUNC_CHAIN",
        "origin": "_DFF_ORIGIN",
        "origin_id": "_DFF_ORIGIN_ID",
        "queue": "_DFF_QUEUE",
        "http_request": "_DFF_HTTP_REQUEST",
    }

    @property
    def task(self) -> Any:
        return runtime.current_task.get()

    @property
    def kwargs(self) -> dict[str, Any]:
        task = runtime.current_task.get()
        return {} if task is None else dict(task.kwargs)

    @property
    def trigger_time(self) -> float | None:
        task = runtime.current_task.get()
        return None if task is None else task.trigger_time

    def __getattr__(self, name: str) -> Any:
        if name in self._NAMES:
            return variables.values_for(runtime.current_task.get())[self._NAMES[name]]
        if name.startswith("_"):
            raise AttributeError(name)
        known = ", ".join(sorted([*self._NAMES, "kwargs", "task", "trigger_time"]))
        raise NotImplementedError(
            f"DFF.TASK.{name} is not supported by fnhub (DFF.TASK offers: {known}; "
            "fnhub.context has the task's details)"
        )


class ConfigHelper:
    """`DFF.CONFIG`: DataFlux Func's `CUSTOM_*` settings, from the worker's environment
    variables `DFF_CUSTOM_*` (as DataFlux Func sets them) or `FNHUB_CUSTOM_*`. fnhub's own
    settings are not shown to scripts."""

    @staticmethod
    def _custom() -> dict[str, str]:
        found: dict[str, str] = {}
        for prefix in ("FNHUB_", "DFF_"):  # DFF_ last: it wins
            for name, value in os.environ.items():
                if name.startswith(prefix + "CUSTOM_"):
                    found[name[len(prefix) :]] = value
        return found

    def __call__(self, key: str, default: Any = None) -> Any:
        return self.get(key, default)

    def get(self, key: str, default: Any = None, unmask: bool = False) -> Any:
        return self._custom().get(key, default)

    def query(
        self, all_configs: bool = False, unmask: bool = False, list_output: bool = False
    ) -> Any:
        found = self._custom()
        if list_output:
            return [{"key": k, "value": v} for k, v in sorted(found.items())]
        return found


def sign(*args: Any) -> str:
    """`DFF.SIGN(*args)`: MD5 of the secret key and the arguments, one a line, as DataFlux
    Func computes it, with fnhub's `secret_key` as the secret."""
    from fnhub.secret_box import resolve_secret_key

    secret = resolve_secret_key(runtime.settings())
    text = secret + "\n" + "\n".join(map(str, args))
    return hashlib.md5(text.encode()).hexdigest()


class EnvHelper:
    """`DFF.ENV(name)`: `fnhub.env(name, default=None)` (None for an unknown name, as in
    DataFlux Func); `DFF.ENV.keys()`."""

    @staticmethod
    def _env() -> Any:
        import fnhub

        name = "env"  # looked up when used: fnhub.env imports SQLAlchemy
        try:
            return getattr(fnhub, name)
        except AttributeError:
            raise NotImplementedError(
                "DFF.ENV needs fnhub.env, which this fnhub does not have"
            ) from None

    def __call__(self, name: str, default: Any = None) -> Any:
        return self._env()(name, default=default)

    def get(self, name: str, default: Any = None) -> Any:
        return self._env()(name, default=default)

    def keys(self) -> list[str]:
        return list(self._env().keys())


class StoreHelper:
    """`DFF.STORE`: `fnhub.store` with DataFlux Func's argument order (`set(key, value,
    expires, not_exists)`, `scope=` everywhere)."""

    def __init__(self, default_scope: str | None = None) -> None:
        self.default_scope = default_scope  # as `DFFCache.default_scope`

    def _scope(self, scope: str | None) -> str | None:
        return scope or self.default_scope

    @staticmethod
    def _store() -> Any:
        import fnhub.store as store

        if not hasattr(store, "SCRIPT_METHODS"):
            raise NotImplementedError("DFF.STORE needs fnhub.store, which this fnhub does not have")
        return store

    def set(
        self,
        key: str,
        value: Any,
        expires: float | None = None,
        not_exists: bool = False,
        expire: float | None = None,
        scope: str | None = None,
    ) -> bool:
        store = self._store()
        return bool(
            store.set(
                key, value, expires or expire, not_exists=not_exists, scope=self._scope(scope)
            )
        )

    def mset(
        self,
        key_values: dict[str, Any],
        expires: float | None = None,
        not_exists: bool = False,
        expire: float | None = None,
        scope: str | None = None,
    ) -> bool:
        store = self._store()
        if not_exists:
            return all(
                [
                    self.set(k, v, expires or expire, True, scope=scope)
                    for k, v in key_values.items()
                ]
            )
        return bool(store.mset(key_values, expires or expire, scope=self._scope(scope)))

    def get(self, key: str, scope: str | None = None) -> Any:
        return self._store().get(key, scope=self._scope(scope))

    def mget(self, keys: list[str], scope: str | None = None) -> dict[str, Any]:
        return dict(self._store().mget(keys, scope=self._scope(scope)))

    def getall(self, scope: str | None = None) -> dict[str, Any]:
        return dict(self._store().getall(scope=self._scope(scope)))

    def keys(self, pattern: str = "*", scope: str | None = None) -> list[str]:
        return list(self._store().keys(pattern, scope=self._scope(scope)))

    def get_pattern(self, pattern: str = "*", scope: str | None = None) -> dict[str, Any]:
        return dict(self._store().get_pattern(pattern, scope=self._scope(scope)))

    def delete(self, key: str, scope: str | None = None) -> Any:
        return self._store().delete(key, scope=self._scope(scope))

    def delete_pattern(self, pattern: str = "*", scope: str | None = None) -> Any:
        return self._store().delete_pattern(pattern, scope=self._scope(scope))
