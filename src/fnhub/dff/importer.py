"""`fnhub import dff DIR`: DataFlux Func script sets → an fnhub project.

The input is a folder of script sets as a DataFlux Func user keeps them: one folder per set
(named by the set's id), its scripts inside as `<script>.py` or `<set>__<script>.py`, and
optionally one YAML or JSON file per set listing its `connectors`, `envVariables`, `cronJobs`,
`syncAPIs`, `asyncAPIs` (and `apiAuths`) with DataFlux Func's field names (`configJSON`,
`autoTypeCasting`, `valueTEXT`, `funcId`, `funcCallKwargsJSON`, `cronExpr`, `isDisabled`...;
the names before 5.0, `dataSources`, `crontabConfigs`, `authLinks`, `batches`, are read too).

Scripts keep DataFlux Func's script id as their name (`scripts/<set>__<script>.py`): then
`import set__script` and `from set__script import x` name the script itself, function ids in
cron jobs, APIs and handlers (`set__script.func`) are fnhub refs as they are, two sets may both
have a `main`, and `DFF.CACHE` / `DFF.STORE` scopes and `_DFF_SCRIPT_SET_ID` stay DataFlux
Func's. Only DataFlux Func's same-set shorthand `import __script` has no fnhub meaning: it is
rewritten to the full id, in place, with a note. `@DFF.API` options are kept; `integration=`
(refused by fnhub at publish) is taken out, with a note (an `autoRun` schedule becomes a cron
job). Secrets are never written: a password env variable or connector password becomes a
`${NAME}` reference to the environment of `fnhub apply`, with a note. What cannot be carried
over is listed as notes, never guessed.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from fnhub.dff.api import KNOWN as API_OPTIONS
from fnhub.dff.connectors import NOT_A_BROKER, settings_from_dff
from fnhub.envs.values import check_name as check_env_name
from fnhub.scripts.inspect import check_name


class DffImportError(ValueError):
    """The folder cannot be converted; the message names the file and the field."""


@dataclass
class Conversion:
    """What one import produces, before anything is written."""

    scripts: dict[str, str] = field(default_factory=dict)  # file name in scripts/ → code
    connectors: dict[str, dict[str, Any]] = field(default_factory=dict)
    subscriptions: dict[str, dict[str, Any]] = field(default_factory=dict)
    envs: dict[str, dict[str, Any]] = field(default_factory=dict)
    cron_jobs: list[dict[str, Any]] = field(default_factory=list)
    endpoints: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


#: the set file's sections, DataFlux Func's names (≥ 5.0 first, then the older ones)
SECTIONS = {
    "connectors": "connectors",
    "dataSources": "connectors",
    "envVariables": "envVariables",
    "cronJobs": "cronJobs",
    "crontabConfigs": "cronJobs",
    "syncAPIs": "syncAPIs",
    "authLinks": "syncAPIs",
    "asyncAPIs": "asyncAPIs",
    "batches": "asyncAPIs",
    "apiAuths": "apiAuths",
}

#: DataFlux Func's env variable types (`autoTypeCasting`) → fnhub's
ENV_TYPES = {
    "string": "string",
    "password": "password",
    "integer": "integer",
    "float": "float",
    "boolean": "boolean",
    "json": "json",
    "commaArray": "list",
}

#: fields DataFlux Func keeps for itself (bookkeeping): not carried over, not worth a note
INTERNAL = {"seq", "createTime", "updateTime", "origin", "originId", "configMD5", "pinTime"}
INTERNAL |= {"isBuiltin", "scope", "createUserId", "updateUserId", "isPinned"}

#: placeholders of `funcCallKwargsJSON` that the caller fills
CALLER_FILLS = {"INPUT_BY_CALLER", "FROM_PARAMETER"}

#: connector config fields that hold a secret (DataFlux Func encrypts these)
SECRET_FIELDS = ("password", "secretKey", "guanceAPIKey", "accessKeySecret")

_SET_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_]{0,63}$")
_ENDPOINT = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_CRON_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
_REF = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*\}")


def _literal(value: Any) -> Any:
    """A string as fnhub.yaml must hold it: `${NAME}` would be read from the environment."""
    if isinstance(value, str):
        return _REF.sub(lambda m: "$" + m.group(0), value)
    if isinstance(value, dict):
        return {k: _literal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_literal(v) for v in value]
    return value


def env_ref(*parts: str) -> str:
    """An environment variable name for a secret: `DB_PASSWORD`, `MQTT_PASSWORD`."""
    name = re.sub(r"[^A-Za-z0-9]+", "_", "_".join(parts)).strip("_").upper() or "SECRET"
    return f"DFF_{name}" if name[0].isdigit() else name


# ---------------------------------------------------------------- reading the folder


@dataclass
class _Set:
    id: str
    folder: Path
    scripts: dict[str, str]  # script id (set__script) → code
    data: dict[str, list[dict[str, Any]]]  # section (SECTIONS' values) → entities


def _load(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DffImportError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        return json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        kind = "JSON" if path.suffix == ".json" else "YAML"
        raise DffImportError(f"{path}: not valid {kind} ({exc})") from None


def _set_file(path: Path) -> dict[str, list[dict[str, Any]]]:
    data = _load(path)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise DffImportError(f"{path}: expected a mapping of sections at the top level")
    out: dict[str, list[dict[str, Any]]] = {}
    for key, entities in data.items():
        if key not in SECTIONS:
            known = ", ".join(sorted(SECTIONS))
            raise DffImportError(f"{path}: unknown section {key!r} (known: {known})")
        if entities is None:
            continue
        if not isinstance(entities, list) or not all(isinstance(e, dict) for e in entities):
            raise DffImportError(f"{path}: {key} must be a list of mappings")
        for i, entity in enumerate(entities):
            if not entity.get("id"):
                raise DffImportError(f"{path}: {key}[{i}] has no `id`")
        out.setdefault(SECTIONS[key], []).extend(entities)
    return out


def _read_sets(root: Path) -> list[_Set]:
    if not root.is_dir():
        raise DffImportError(f"{root}: not a folder")
    if any(root.glob("*.py")):
        raise DffImportError(
            f"{root} holds .py files: give the folder holding one folder per script set"
        )
    sets = []
    folders = [p for p in root.iterdir() if p.is_dir() and p.name not in ("__pycache__",)]
    for folder in sorted(p for p in folders if not p.name.startswith(".")):
        set_id = folder.name
        if not _SET_ID.match(set_id) or "__" in set_id:
            raise DffImportError(
                f"{folder}: a script set id is letters, digits and '_' without '__' "
                "(the folder is named by it)"
            )
        scripts: dict[str, str] = {}
        for path in sorted(folder.glob("*.py")):
            stem = path.stem
            name = stem[len(set_id) + 2 :] if stem.startswith(f"{set_id}__") else stem
            if not name.isidentifier() or "__" in name or name.startswith("_"):
                raise DffImportError(
                    f"{path}: a script id is `{set_id}__<name>`, <name> letters, digits and "
                    "'_' without '__'"
                )
            script_id = f"{set_id}__{name}"
            if script_id in scripts:
                raise DffImportError(f"{folder}: two files are script {script_id}")
            scripts[script_id] = path.read_text(encoding="utf-8")
        files = sorted(
            p for p in folder.iterdir() if p.suffix in (".yaml", ".yml", ".json") and p.is_file()
        )
        if len(files) > 1:
            names = ", ".join(p.name for p in files)
            raise DffImportError(f"{folder}: one set file at most, found {names}")
        if not scripts and not files:
            continue
        sets.append(_Set(set_id, folder, scripts, _set_file(files[0]) if files else {}))
    if not sets:
        raise DffImportError(f"{root}: no script set folders (with .py scripts) inside")
    return sets


# ---------------------------------------------------------------- scripts


@dataclass
class _Function:
    ref: str
    options: dict[str, Any]  # the literal options of @DFF.API


def _is_dff_api(node: ast.expr) -> bool:
    target = node.func if isinstance(node, ast.Call) else node
    return (
        isinstance(target, ast.Attribute)
        and target.attr in ("API", "api")
        and isinstance(target.value, ast.Name)
        and target.value.id in ("DFF", "dff")
    )


def _offset(lines: list[str], line: int, col: int) -> int:
    """Character offset of (1-based line, UTF-8 byte column) in the joined lines."""
    text = lines[line - 1]
    return sum(len(x) for x in lines[: line - 1]) + len(text.encode()[:col].decode())


@dataclass
class _Edit:
    start: int
    end: int
    text: str


def _apply(code: str, edits: list[_Edit]) -> str:
    """Replace spans, keeping the line count (a removed span keeps its newlines), so the line
    numbers of tracebacks stay those of the original script."""
    for edit in sorted(edits, key=lambda e: e.start, reverse=True):
        removed = code[edit.start : edit.end]
        text = edit.text + "\n" * (removed.count("\n") - edit.text.count("\n"))
        code = code[: edit.start] + text + code[edit.end :]
    return code


def _convert_script(
    script_id: str, code: str, set_ids: set[str], out: Conversion
) -> tuple[str, list[_Function]]:
    """The code as fnhub publishes it, and its `@DFF.API` functions."""
    set_id = script_id.split("__")[0]
    try:
        tree = ast.parse(code, filename=f"{script_id}.py")
    except SyntaxError as exc:
        raise DffImportError(f"{script_id}.py: line {exc.lineno}: {exc.msg}") from None
    lines = code.splitlines(keepends=True)
    edits: list[_Edit] = []
    shorthand: list[str] = []
    imported: set[str] = set()
    statements = [n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom)]
    for stmt in statements:
        if isinstance(stmt, ast.Import):
            names = [a.name for a in stmt.names]
        else:
            names = [stmt.module] if stmt.level == 0 and stmt.module else []
        short = [n for n in names if n.startswith("__") and n != "__future__" and "." not in n]
        for name in names:
            if re.fullmatch(r"[A-Za-z0-9]\w*__\w+", name.split(".")[0]):
                imported.add(name.split(".")[0])  # another script, as DataFlux Func names it
        if not short:
            continue
        shorthand += short
        imported.update(f"{set_id}{n}" for n in short)
        start = _offset(lines, stmt.lineno, stmt.col_offset)
        end = _offset(lines, stmt.end_lineno or stmt.lineno, stmt.end_col_offset or 0)
        edits.append(_Edit(start, end, _full_ids(code[start:end], stmt, short, set_id)))
    for name in sorted(imported):
        if name.split("__")[0] not in set_ids:
            out.notes.append(
                f"{script_id}: imports {name}, whose script set is not in the imported folder: "
                "import its set too"
            )
    if shorthand:
        out.notes.append(
            f"{script_id}: `import {'`, `import '.join(sorted(set(shorthand)))}` (DataFlux "
            f"Func's same-set shorthand) rewritten to the full script id ({set_id}__...)"
        )
    functions = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for decorator in node.decorator_list:
            if not _is_dff_api(decorator):
                continue
            ref = f"{script_id}.{node.name}"
            options: dict[str, Any] = {}
            if isinstance(decorator, ast.Call):
                options = _api_options(ref, decorator, lines, edits, out)
            functions.append(_Function(ref, options))
    return _apply(code, edits), functions


def _full_ids(
    segment: str, stmt: ast.Import | ast.ImportFrom, short: list[str], set_id: str
) -> str:
    """The import statement with `__script` as `set__script`, binding the same names:
    `import __x` → `import set__x as __x`, `import __x as y` and `from __x import ...` keep
    their names."""
    for name in short:
        full = f"{set_id}{name}"
        if isinstance(stmt, ast.ImportFrom):
            segment = re.sub(rf"(?<![\w.]){re.escape(name)}(?![\w.])", full, segment, count=1)
            continue

        def alias(match: re.Match[str], full: str = full, name: str = name) -> str:
            return full if match.group(1) else f"{full} as {name}"

        pattern = rf"(?<![\w.]){re.escape(name)}(?![\w.])(\s+as\b)?"
        segment = re.sub(pattern, alias, segment, count=1)
    return segment


def _api_options(
    ref: str, call: ast.Call, lines: list[str], edits: list[_Edit], out: Conversion
) -> dict[str, Any]:
    """`@DFF.API`'s literal options; `integration` and `integration_config` taken out."""
    options: dict[str, Any] = {}
    args: list[ast.expr | ast.keyword] = [*call.args, *call.keywords]
    drop: set[int] = set()
    for i, kw in enumerate(call.keywords):
        if kw.arg is None:
            out.notes.append(f"{ref}: @DFF.API(**...) options are not checked by the importer")
            continue
        try:
            options[kw.arg] = ast.literal_eval(kw.value)
        except ValueError:
            options[kw.arg] = ...  # not a literal: known to be given, value unknown
        if kw.arg in ("integration", "integration_config"):
            drop.add(len(call.args) + i)
        elif kw.arg not in API_OPTIONS:
            out.notes.append(
                f"{ref}: @DFF.API option `{kw.arg}` is unknown to fnhub: publishing will refuse "
                "it, remove it"
            )
    edits.extend(_removals(args, drop, lines))
    queue = options.get("queue")
    if isinstance(queue, int) and not isinstance(queue, bool):
        out.notes.append(
            f"{ref}: queue={queue} runs on fnhub's queue q{queue}: start a worker on it "
            f"(`fnhub worker --queues sync,async,cron,sub,q{queue}`) or drop the option"
        )
    if "integration" in options:
        config = options.get("integration_config")
        kind = options["integration"]
        what = f"integration={kind!r}" if kind is not ... else "integration"
        if kind in ("autoRun",) and isinstance(config, dict):
            expr = config.get("cronExpr") or config.get("crontab")
            others = sorted(k for k in config if k not in ("cronExpr", "crontab") and config[k])
            if isinstance(expr, str):
                out.cron_jobs.append(
                    {"id": _cron_id(f"autorun-{ref}"), "function": ref, "expr": expr}
                )
                out.notes.append(
                    f"{ref}: {what} taken out of @DFF.API (fnhub refuses it); its cronExpr "
                    f"became the cron job {_cron_id(f'autorun-{ref}')}"
                )
            else:
                out.notes.append(f"{ref}: {what} taken out of @DFF.API (fnhub refuses it)")
            if others:
                out.notes.append(
                    f"{ref}: autoRun {', '.join(others)} not carried over (fnhub runs a function "
                    "on publish or start-up only if you call it): `fnhub call` it after apply"
                )
        else:
            alternative = (
                "console users or an endpoint's `function` auth"
                if kind in ("signIn", "login")
                else "a cron job or an endpoint"
            )
            out.notes.append(
                f"{ref}: {what} taken out of @DFF.API (fnhub refuses it): use {alternative}"
            )
    return options


def _removals(args: list[ast.expr | ast.keyword], drop: set[int], lines: list[str]) -> list[_Edit]:
    """Spans taking the arguments `drop` (indexes in `args`) out of a call, with their commas:
    each run of them up to the next kept argument, or from the end of the previous one."""

    def start(node: ast.expr | ast.keyword) -> int:
        return _offset(lines, node.lineno, node.col_offset)

    def end(node: ast.expr | ast.keyword) -> int:
        return _offset(lines, node.end_lineno or node.lineno, node.end_col_offset or 0)

    edits, i = [], 0
    while i < len(args):
        if i not in drop:
            i += 1
            continue
        j = i
        while j + 1 < len(args) and j + 1 in drop:
            j += 1
        if j + 1 < len(args):
            edits.append(_Edit(start(args[i]), start(args[j + 1]), ""))
        elif i > 0:  # the last ones: their trailing comma too, so none is left alone
            stop = end(args[j])
            text = "".join(lines)
            after = len(text[stop:]) - len(text[stop:].lstrip(" \t\n"))
            if text[stop + after : stop + after + 1] == ",":
                stop += after + 1
            edits.append(_Edit(end(args[i - 1]), stop, ""))
        else:
            edits.append(_Edit(start(args[i]), end(args[j]), ""))
        i = j + 1
    return edits


def _cron_id(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-._")[:128] or "cron"


# ---------------------------------------------------------------- set entities


def _json_field(entity: dict[str, Any], name: str, where: str) -> Any:
    """`configJSON` / `funcCallKwargsJSON`...: a value, or JSON text as a database row has it;
    `config` (without the suffix) is taken too."""
    value = entity.get(name, entity.get(name.removesuffix("JSON")))
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            raise DffImportError(f"{where}: {name} is not valid JSON") from None
    return value


def _epoch(value: Any, where: str) -> float | None:
    """DataFlux Func's `expireTime`: epoch seconds (or milliseconds), or an ISO date."""
    if value in (None, "", 0):
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value) / 1000 if value > 1e11 else float(value)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value).timestamp()
        except ValueError:
            pass
    raise DffImportError(f"{where}: expireTime {value!r} is not a time")


def _leftover(entity: dict[str, Any], used: set[str], where: str, out: Conversion) -> None:
    rest = sorted(
        k
        for k, v in entity.items()
        if k not in used
        and k not in INTERNAL
        and "_" not in k  # fields a listing joins in (`func_title`, `sset_id`...)
        and v not in (None, "", [], {}, False)
    )
    if rest:
        out.notes.append(f"{where}: {', '.join(rest)} not carried over (no fnhub counterpart)")


def _env(entity: dict[str, Any], where: str, out: Conversion) -> None:
    name = str(entity["id"])
    try:
        check_env_name(name)
    except ValueError as exc:
        out.notes.append(f"{where}: not carried over: {exc}")
        return
    kind = str(entity.get("autoTypeCasting") or "string")
    if kind not in ENV_TYPES:
        out.notes.append(f"{where}: type {kind!r} is unknown: not carried over")
        return
    description = " - ".join(
        str(entity[k]) for k in ("title", "description") if entity.get(k)
    ).strip()
    spec: dict[str, Any] = {"type": ENV_TYPES[kind]}
    if kind == "password":
        ref = env_ref(name)
        spec["value"] = f"${{{ref}}}"
        out.notes.append(
            f"env {name}: a password; its value is not written: set {ref} in the environment "
            f"of `fnhub apply` / `fnhub serve` (or leave it out of fnhub.yaml and "
            f"`fnhub env set {name} --type password --stdin`)"
        )
    else:
        value = entity.get("valueTEXT", entity.get("value"))
        if value is None:
            out.notes.append(f"{where}: no valueTEXT: not carried over")
            return
        spec["value"] = _literal(value if isinstance(value, str) else json.dumps(value))
    if description:
        spec["description"] = _literal(description)
    if name in out.envs and out.envs[name] != spec:
        raise DffImportError(f"{where}: env variable {name} is declared twice, differently")
    out.envs[name] = spec
    used = {"id", "title", "description", "autoTypeCasting", "valueTEXT", "valueTEXTCipher"}
    _leftover(entity, used, where, out)


def _connector(
    entity: dict[str, Any], where: str, functions: dict[str, _Function], out: Conversion
) -> None:
    from fnhub.connectors import validate_settings
    from fnhub.connectors.base import ConnectorConfigError

    name = str(entity["id"])
    kind = str(entity.get("type") or "")
    if kind not in ("redis", "mqtt", "kafka"):
        what = f"connector {name} ({kind or 'no type'})"
        out.notes.append(f"{what}: not carried over: {NOT_A_BROKER}")
        return
    config = dict(_json_field(entity, "configJSON", where) or {})
    handlers = config.pop("topicHandlers", None) or []
    multiple = config.pop("multiSubClient", None)
    for secret in SECRET_FIELDS:
        if config.pop(f"{secret}Cipher", None) is not None and secret not in config:
            config[secret] = None  # encrypted with DataFlux Func's SECRET: ask for it
    clear = {k: _literal(v) for k, v in config.items() if v is not None}
    for secret in SECRET_FIELDS:
        if secret in config:
            ref = env_ref(name, secret)
            clear[secret] = f"${{{ref}}}"  # mapped with the rest (Kafka: sasl_password...)
            out.notes.append(
                f"connector {name}: its {secret} is not written: set {ref} in the environment "
                "of `fnhub apply` / `fnhub serve`"
            )
    settings = settings_from_dff(kind, clear)
    try:
        validate_settings(kind, settings)
    except (ConnectorConfigError, ValueError) as exc:
        out.notes.append(f"connector {name}: not carried over: {exc}")
        return
    spec: dict[str, Any] = {"type": kind, "settings": settings}
    description = " - ".join(str(entity[k]) for k in ("title", "description") if entity.get(k))
    if description:
        spec["description"] = _literal(description)
    out.connectors[name] = spec
    _leftover(entity, {"id", "type", "title", "description", "configJSON", "config"}, where, out)
    for i, handler in enumerate(handlers):
        _subscription(name, kind, handler, multiple, f"{where}.topicHandlers[{i}]", functions, out)


def _subscription(
    connector: str,
    kind: str,
    handler: Any,
    multiple: Any,
    where: str,
    functions: dict[str, _Function],
    out: Conversion,
) -> None:
    if not isinstance(handler, dict) or not handler.get("topic") or not handler.get("funcId"):
        raise DffImportError(f"{where}: needs `topic` and `funcId`")
    topic, func = str(handler["topic"]), str(handler["funcId"])
    if func not in functions:
        out.notes.append(
            f"{where}: handler {func} is not a @DFF.API function of the imported scripts: "
            f"the subscription to {topic!r} is not carried over"
        )
        return
    spec: dict[str, Any] = {"connector": connector, "topics": [topic], "function": func}
    mode = bool(multiple) if multiple is not None else kind == "kafka"
    if mode:
        spec["mode"] = "multiple"
    if handler.get("isDisabled"):
        spec["enabled"] = False
    base = re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{connector}-{topic}").strip("-._") or connector
    name, n = base[:120], 2
    while name in out.subscriptions:
        name, n = f"{base[:120]}-{n}", n + 1
    out.subscriptions[name] = spec
    if topic.startswith(("$share/", "$queue/")):
        out.notes.append(
            f"subscription {name}: topic {topic!r} is a shared subscription; fnhub shares with "
            "`mode: multiple` and `options.share_group`: edit it"
        )


def _cron_job(
    entity: dict[str, Any], where: str, functions: dict[str, _Function], out: Conversion
) -> None:
    job_id = str(entity["id"])
    func = str(entity.get("funcId") or "")
    if func not in functions:
        out.notes.append(
            f"{where}: function {func or '(none)'} is not a @DFF.API function of the imported "
            "scripts: not carried over"
        )
        return
    expr = entity.get("cronExpr", entity.get("crontab"))
    fixed = functions[func].options.get("fixed_cron_expr") or functions[func].options.get(
        "fixed_crontab"
    )
    if not expr and not fixed:
        out.notes.append(
            f"{where}: no cronExpr and {func} has no fixed_cron_expr: not carried over"
        )
        return
    spec: dict[str, Any] = {"id": job_id if _CRON_ID.match(job_id) else _cron_id(job_id)}
    if spec["id"] != job_id:
        out.notes.append(f"{where}: id {job_id!r} written as {spec['id']!r} (fnhub's id rules)")
    spec["function"] = func
    if expr:
        spec["expr"] = str(expr)
    if fixed and expr:
        out.notes.append(f"{where}: {func} has fixed_cron_expr, which wins over cronExpr")
    if entity.get("timezone"):
        spec["timezone"] = str(entity["timezone"])
    kwargs = _json_field(entity, "funcCallKwargsJSON", where)
    if kwargs:
        spec["kwargs"] = _literal(kwargs)
    expires = _epoch(entity.get("expireTime"), where)
    if expires is not None:
        spec["expires_at"] = expires
    if entity.get("isDisabled"):
        spec["enabled"] = False
    if entity.get("taskRecordLimit") is not None:
        spec["record_limit"] = int(entity["taskRecordLimit"])
    if entity.get("note") or entity.get("title"):
        spec["title"] = _literal(str(entity.get("title") or entity.get("note")))
    used = {"id", "funcId", "cronExpr", "crontab", "timezone", "funcCallKwargsJSON"}
    used |= {"funcCallKwargs", "expireTime", "isDisabled", "taskRecordLimit", "note", "title"}
    _leftover(entity, used | {"tagsJSON"}, where, out)
    if _json_field(entity, "tagsJSON", where):
        out.notes.append(f"{where}: tags not carried over (fnhub's cron jobs have none)")
    if any(j["id"] == spec["id"] for j in out.cron_jobs):
        raise DffImportError(f"{where}: a second cron job {spec['id']}")
    out.cron_jobs.append(spec)


def _endpoint(
    entity: dict[str, Any],
    mode: str,
    where: str,
    functions: dict[str, _Function],
    auths: dict[str, dict[str, Any]],
    out: Conversion,
) -> None:
    api_id = str(entity["id"])
    func = str(entity.get("funcId") or "")
    kind = "Sync API" if mode == "sync" else "Async API"
    if func not in functions:
        out.notes.append(
            f"{where}: function {func or '(none)'} is not a @DFF.API function of the imported "
            "scripts: not carried over"
        )
        return
    name = api_id if _ENDPOINT.match(api_id) else re.sub(r"[^A-Za-z0-9_-]+", "-", api_id)[:128]
    if name != api_id:
        out.notes.append(f"{where}: {kind} {api_id!r} is the endpoint {name!r} (fnhub's names)")
    spec: dict[str, Any] = {"function": func, "mode": mode}
    if entity.get("note"):
        spec["description"] = _literal(str(entity["note"]))[:2000]
    kwargs = _json_field(entity, "funcCallKwargsJSON", where)
    if isinstance(kwargs, dict):
        spec["kwargs"] = {
            k: "$caller" if v in CALLER_FILLS else _literal(v) for k, v in kwargs.items()
        }
    throttle = _json_field(entity, "throttlingJSON", where) or {}
    windows = {"bySecond": "second", "byMinute": "minute", "byHour": "hour", "byDay": "day"}
    limits = {windows[k]: int(v) for k, v in throttle.items() if k in windows and v}
    if limits:
        spec["throttle"] = limits
    dropped = sorted(k for k, v in throttle.items() if k not in windows and v)
    if dropped:
        out.notes.append(
            f"{where}: throttling {', '.join(dropped)} not carried over (fnhub counts per "
            "second, minute, hour and day)"
        )
    expires = _epoch(entity.get("expireTime"), where)
    if expires is not None:
        spec["expires_at"] = expires
    if entity.get("taskRecordLimit") is not None:
        spec["record_limit"] = int(entity["taskRecordLimit"])
    enabled = not entity.get("isDisabled")
    auth_id = entity.get("apiAuthId")
    if auth_id:
        auth = _auth(str(auth_id), auths, name, out)
        if auth is None:
            enabled = False
        else:
            spec["auth"] = auth
    if not enabled:
        spec["enabled"] = False
    used = {"id", "funcId", "note", "funcCallKwargsJSON", "funcCallKwargs", "throttlingJSON"}
    used |= {"throttling", "expireTime", "taskRecordLimit", "isDisabled", "apiAuthId", "tagsJSON"}
    used |= {"showInDoc"}
    _leftover(entity, used, where, out)
    if name in out.endpoints:
        raise DffImportError(f"{where}: a second API {name}")
    out.endpoints[name] = spec


def _auth(
    auth_id: str, auths: dict[str, dict[str, Any]], endpoint: str, out: Conversion
) -> dict[str, Any] | None:
    """DataFlux Func's API auth as an endpoint's `auth`, or None (then the endpoint is written
    disabled: an API that had an auth must not become public)."""
    entity = auths.get(auth_id)
    if entity is None:
        out.notes.append(
            f"endpoint {endpoint}: its API auth {auth_id} is not in the set file's apiAuths: "
            "written disabled; give it `auth:` and `enabled: true`"
        )
        return None
    kind = entity.get("type")
    config = _json_field(entity, "configJSON", f"apiAuth {auth_id}") or {}
    if kind == "fixedField":
        fields = config.get("fields") or []
        if len(fields) == 1 and fields[0].get("location") in ("header", "query"):
            ref = env_ref(endpoint, "token")
            out.notes.append(
                f"endpoint {endpoint}: fixedField auth {auth_id} → token auth; its value is "
                f"not written: set {ref} in the environment of `fnhub apply` (8 characters or "
                "more)"
            )
            return {
                "type": "token",
                "location": fields[0]["location"],
                "field": str(fields[0].get("name") or "X-Token"),
                "token": f"${{{ref}}}",
            }
    if kind == "httpBasic":
        users = config.get("users") or []
        if len(users) == 1 and users[0].get("username"):
            ref = env_ref(endpoint, "password")
            out.notes.append(
                f"endpoint {endpoint}: httpBasic auth {auth_id} → basic auth; the password is "
                f"not written: set {ref} in the environment of `fnhub apply`"
            )
            user = str(users[0]["username"])
            return {"type": "basic", "username": user, "password": f"${{{ref}}}"}
    out.notes.append(
        f"endpoint {endpoint}: API auth {auth_id} ({kind}) has no fnhub counterpart as it is "
        "(fnhub: one token field, one basic user, hmac, or a function): written disabled; "
        "give it `auth:` and `enabled: true`"
    )
    return None


# ---------------------------------------------------------------- the whole conversion


def convert(root: Path) -> Conversion:
    """Read the script sets under `root` and build the fnhub project (nothing is written)."""
    sets = _read_sets(root)
    out = Conversion()
    set_ids = {s.id for s in sets}
    functions: dict[str, _Function] = {}
    for script_set in sets:
        for script_id, code in script_set.scripts.items():
            problem = check_name(script_id)
            if problem:
                raise DffImportError(f"{script_set.folder}: script {script_id}: {problem}")
            converted, found = _convert_script(script_id, code, set_ids, out)
            out.scripts[f"{script_id}.py"] = converted
            functions.update((f.ref, f) for f in found)
    auths: dict[str, dict[str, Any]] = {}
    for script_set in sets:
        for entity in script_set.data.get("apiAuths", []):
            auths[str(entity["id"])] = entity
    for script_set in sets:
        data, label = script_set.data, script_set.folder.name
        for entity in data.get("envVariables", []):
            _env(entity, f"{label}: env variable {entity['id']}", out)
        for entity in data.get("connectors", []):
            if entity["id"] in out.connectors:
                raise DffImportError(f"{label}: connector {entity['id']} is declared twice")
            _connector(entity, f"{label}: connector {entity['id']}", functions, out)
        for entity in data.get("cronJobs", []):
            _cron_job(entity, f"{label}: cron job {entity['id']}", functions, out)
        for section, mode in (("syncAPIs", "sync"), ("asyncAPIs", "async")):
            for entity in data.get(section, []):
                where = f"{label}: {section[:-1]} {entity['id']}"
                _endpoint(entity, mode, where, functions, auths, out)
    return out


# ---------------------------------------------------------------- writing the project


def write_project(project: Path, out: Conversion, *, force: bool = False) -> list[str]:
    """Merge into `fnhub.yaml` and write the scripts; returns what was done, line by line.
    A script or an fnhub.yaml entry that exists with other content is replaced only with
    `force`; without it nothing is written."""
    path = project / "fnhub.yaml"
    data: dict[str, Any] = {}
    if path.exists():
        loaded = _load(path)
        if loaded is not None and not isinstance(loaded, dict):
            raise DffImportError(f"{path}: expected a YAML mapping at the top level")
        data = loaded or {}
    scripts = project / "scripts"
    conflicts = []
    for filename, code in out.scripts.items():
        target = scripts / filename
        if target.exists() and target.read_text() != code:
            conflicts.append(str(target))
        if (scripts / f"{filename[:-3]}.js").exists():
            raise DffImportError(
                f"scripts/{filename} would share its name with scripts/{filename[:-3]}.js: "
                "rename or remove it first"
            )
    mappings = {
        "connectors": out.connectors,
        "subscriptions": out.subscriptions,
        "envs": out.envs,
        "endpoints": out.endpoints,
        "cron_jobs": {job["id"]: job for job in out.cron_jobs},
    }
    merged: dict[str, Any] = {}
    done: list[str] = []
    for section, entries in mappings.items():
        if not entries:
            continue
        current = data.get(section) or ([] if section == "cron_jobs" else {})
        if section == "cron_jobs":
            if not isinstance(current, list) or not all(isinstance(j, dict) for j in current):
                raise DffImportError(f"{path}: `cron_jobs` must be a list of jobs")
            by_id = {str(j.get("id")): j for j in current}
        else:
            if not isinstance(current, dict):
                raise DffImportError(f"{path}: `{section}` must be a mapping")
            by_id = dict(current)
        for name, value in entries.items():
            if name in by_id and by_id[name] != value:
                if not force:
                    conflicts.append(f"{path}: {section}.{name}")
                    continue
                done.append(f"{section} {name} replaced")
            elif name not in by_id:
                done.append(f"{section} {name} added")
            by_id[name] = value
        merged[section] = list(by_id.values()) if section == "cron_jobs" else by_id
    if conflicts and not force:
        raise DffImportError(
            "exists with other content (use --force to replace): " + ", ".join(conflicts)
        )
    data.update(merged)
    project.mkdir(parents=True, exist_ok=True)
    if merged or not path.exists():
        path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    scripts.mkdir(exist_ok=True)
    for filename, code in out.scripts.items():
        target = scripts / filename
        if not target.exists() or target.read_text() != code:
            target.write_text(code)
            done.append(f"scripts/{filename} written")
    return done
