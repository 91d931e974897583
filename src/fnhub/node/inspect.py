"""Validating JavaScript scripts before they are published, in a one-shot Node process.

Like Python scripts (fnhub.scripts.inspect), finding a module's exported functions means running
its top-level code, which is the user's: it runs in a Node process of its own that is killed
after answering or after `INSPECT_TIMEOUT_SECONDS`. The host (host.js, mode `inspect`) reports
syntax errors with line and column, throws at load with their message and line, and each
exported function's convention, kwargs (from its destructuring pattern) and raw `fnhub.api`
options; the options are checked here, by the same rules as `@fnhub.api`'s.
"""

from __future__ import annotations

import difflib
import hashlib
import re
import time
from pathlib import Path
from typing import Any

import msgspec

from fnhub.functions import FunctionInfo, FunctionOptions, Param, _delays, _typed_options, _validate
from fnhub.node.host import Gone, HostProcess, encode_frame
from fnhub.node.locate import NodeBinary
from fnhub.scripts.inspect import ScriptError

INSPECT_TIMEOUT_SECONDS = 30.0
#: script names become file names in the host's folder: nothing that could leave it
_SCRIPT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_FIELDS = tuple(FunctionOptions.__struct_fields__)
#: what fnhub.api accepts: each option's snake_case name and its camelCase spelling
_OPTION_NAMES = {
    **{f: f for f in _FIELDS},
    **{re.sub(r"_([a-z])", lambda m: m[1].upper(), f): f for f in _FIELDS},
}


def _option_fields(raw: dict[str, Any]) -> dict[str, Any]:
    """The options under their Python names; an unknown name is refused with the nearest."""
    fields: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "doc":
            continue
        name = _OPTION_NAMES.get(key)
        if name is None:
            match = difflib.get_close_matches(key, list(_OPTION_NAMES), n=1, cutoff=0.6)
            hint = f" (did you mean '{match[0]}'?)" if match else ""
            raise ValueError(f"unknown fnhub.api option `{key}`{hint}")
        if name in fields:
            raise ValueError(f"fnhub.api option `{name}` given twice (as `{key}` too)")
        fields[name] = value
    return fields


def js_options(raw: dict[str, Any]) -> FunctionOptions:
    """`fnhub.api(options, fn)`'s options as `@fnhub.api`'s, checked by the same rules."""
    fields = _option_fields(raw)
    if fields.get("tags") is None:
        fields.pop("tags", None)
    delayed = fields.get("delayed_crontab")
    fields["delayed_crontab"] = [] if delayed is None else _delays(delayed)
    try:
        options = _typed_options(**fields)
    except ValueError as exc:
        raise ValueError(str(exc).replace("@fnhub.api", "fnhub.api", 1)) from None
    options.tags = sorted(set(options.tags))
    _validate(options)
    return options


def _function_info(script: str, raw: dict[str, Any]) -> FunctionInfo:
    options = raw.get("options") or {}
    if not isinstance(options, dict):
        raise ValueError("fnhub.api options must be an object")
    doc = options.get("doc", "")
    return FunctionInfo(
        script=script,
        name=raw["name"],
        doc=doc if isinstance(doc, str) else "",
        params=msgspec.convert(raw["params"], list[Param]),
        is_async=bool(raw["is_async"]),
        convention=raw["convention"],
        options=js_options(options),
    )


def inspect_js(
    pending: dict[str, str],
    active: dict[str, tuple[str, str]],
    *,
    node: NodeBinary,
    modules_dir: Path | None = None,
) -> dict[str, list[FunctionInfo]]:
    """Load each pending script (imports see the pending versions first, then the active ones)
    and describe its exported functions; raise ScriptError naming the first broken one."""
    for name in pending:
        if not _SCRIPT_NAME.fullmatch(name):
            raise ScriptError(name, "script names must be letters, digits and '_'")
    files: dict[str, list[str]] = {
        name: [hash_, code]
        for name, (code, hash_) in active.items()
        if _SCRIPT_NAME.fullmatch(name)
    }
    for name, code in pending.items():
        files[name] = [hashlib.sha256(code.encode()).hexdigest(), code]
    if modules_dir is not None and (modules_dir / "node_modules").is_dir():
        modules_dir = modules_dir / "node_modules"
    process = HostProcess(node, "inspect", modules_dir=modules_dir)
    names = ", ".join(pending)
    deadline = time.time() + INSPECT_TIMEOUT_SECONDS
    try:
        request = encode_frame({"t": "inspect", "files": files, "pending": list(pending)})
        answer = None
        if process.write(request, deadline):
            while answer is None or answer.get("t") != "inspected":
                answer = process.read(deadline)
                if answer is None:
                    break
        if answer is None:
            raise ScriptError(names, f"loading took over {INSPECT_TIMEOUT_SECONDS:g}s")
    except Gone:
        try:
            exit_code: int | None = process.proc.wait(5)
        except Exception:
            exit_code = None
        detail = process.log_tail(2000).strip()
        raise ScriptError(
            names, f"the Node process ended without an answer (exit code {exit_code}): {detail}"
        ) from None
    finally:
        process.kill()
        process.close()
    for name, problem in answer["errors"].items():
        raise ScriptError(
            name or names, problem["message"], problem.get("line"), problem.get("column")
        )
    found: dict[str, list[FunctionInfo]] = {}
    for name, functions in answer["ok"].items():
        infos = []
        for raw in functions:
            try:
                infos.append(_function_info(name, raw))
            except (ValueError, msgspec.ValidationError) as exc:
                raise ScriptError(name, f"cannot export {raw['name']}: {exc}") from None
        found[name] = infos
    return found
