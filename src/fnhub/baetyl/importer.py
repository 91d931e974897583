"""`fnhub import baetyl`: Baetyl v1 configuration files → fnhub connectors, subscriptions, scripts.

Baetyl spreads one setup over several `service.yml` files (function manager: hub address, rules,
function pool sizes; one per runtime: handlers, SQL text, code folders; hub: routes), so each
file given is recognised by its content, not its name or order. The result is merged into the
project's `fnhub.yaml`: one MQTT connector for the hub, one subscription per rule (function or
SQL) and per hub route. A Python function becomes a small wrapper script exporting
`handler(event, context)` with `@fnhub.api`, a Node function a small JavaScript wrapper exporting
`handler(event, context, callback)` through `fnhub.api(...)` (fnhub detects Baetyl's convention
from either signature); the rule's retries and the function's timeout and `instance.max` become
the wrapper's options. The handler's code folder (`*.py`, or `*.js`) is copied into `scripts/`
when it is found. A `.js` file whose name a `.py` script already uses is renamed, since one name
cannot be both. What cannot be converted (TLS files, Python 2 code, code not found, npm packages)
is listed as notes, never guessed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import yaml

from fnhub.scripts.inspect import check_name
from fnhub.subscriptions.cycles import check_cycles
from fnhub.subscriptions.spec import SpecError, parse_spec


class BaetylImportError(ValueError):
    """The Baetyl files cannot be converted; the message names the file and the key."""


@dataclass
class Conversion:
    """What one import produces, before anything is written."""

    connectors: dict[str, dict[str, Any]] = field(default_factory=dict)
    subscriptions: dict[str, dict[str, Any]] = field(default_factory=dict)
    scripts: dict[str, str] = field(default_factory=dict)  # file name in scripts/ → code
    notes: list[str] = field(default_factory=list)


@dataclass
class _Files:
    manager: dict[str, Any] | None = None
    hub: dict[str, Any] | None = None
    runtimes: list[tuple[Path, dict[str, Any]]] = field(default_factory=list)
    images: dict[str, str] = field(default_factory=dict)  # application.yml: service → image


def load_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise BaetylImportError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        raise BaetylImportError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise BaetylImportError(f"{path}: expected a YAML mapping at the top level")
    return data


def _classify(paths: list[Path]) -> _Files:
    files = _Files()
    for path in paths:
        data = load_yaml(path)
        if "rules" in data:
            if files.manager is not None:
                raise BaetylImportError(f"{path}: a second function-manager file (has `rules`)")
            files.manager = data
        elif "subscriptions" in data or "principals" in data or "listen" in data:
            files.hub = data
        elif "functions" in data:
            files.runtimes.append((path, data))
        elif "services" in data:
            for service in data.get("services") or []:
                if isinstance(service, dict) and service.get("name"):
                    files.images[str(service["name"])] = str(service.get("image", ""))
        else:
            raise BaetylImportError(
                f"{path}: not a Baetyl function-manager (`rules`), hub (`subscriptions`), "
                "runtime (`functions`) or application (`services`) configuration"
            )
    if files.manager is None and files.hub is None:
        raise BaetylImportError(
            "give the function manager's service.yml (with `rules`) "
            "or the hub's (with `subscriptions`)"
        )
    return files


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_.-") or "x"


def _unique(name: str, taken: dict[str, Any]) -> str:
    name = name[:120]
    candidate, n = name, 2
    while candidate in taken:
        candidate, n = f"{name}-{n}", n + 1
    return candidate


def _qos(value: Any, where: str) -> int:
    qos = 0 if value is None else value
    if qos not in (0, 1):
        raise BaetylImportError(f"{where}: qos must be 0 or 1 (Baetyl), got {value!r}")
    return int(qos)


def _connector(files: _Files, broker: str | None, notes: list[str]) -> dict[str, Any]:
    """The hub as an MQTT connector: MQTT 3.1.1, as Baetyl's hub speaks nothing newer."""
    hub = (files.manager or {}).get("hub") or {}
    settings: dict[str, Any] = {"protocol": "3.1.1"}
    address = hub.get("address")
    if address is None and files.hub is not None:
        listen = [u for u in files.hub.get("listen") or [] if str(u).startswith(("tcp", "ssl"))]
        address = listen[0] if listen else None
    if broker:
        host, _, port = broker.rpartition(":")
        settings.update(host=host or broker, port=int(port) if port.isdigit() else 1883)
    elif address:
        url = urlsplit(str(address))
        if url.scheme not in ("tcp", "ssl", "mqtt", "mqtts"):
            raise BaetylImportError(
                f"hub.address {address!r}: only tcp:// and ssl:// are supported"
            )
        host = url.hostname or "127.0.0.1"
        settings.update(host="127.0.0.1" if host == "0.0.0.0" else host, port=url.port or 1883)
        if url.scheme in ("ssl", "mqtts"):
            tls = {
                k2: hub[k1]
                for k1, k2 in (("ca", "ca_certs"), ("cert", "certfile"), ("key", "keyfile"))
                if hub.get(k1)
            }
            if hub.get("insecure"):
                tls["insecure"] = True
            settings["tls"] = tls or True
            if tls:
                notes.append("TLS file paths were copied as they are: check them on this machine")
        if host not in ("127.0.0.1", "localhost", "0.0.0.0"):
            notes.append(
                f"the connector points at {host}:{settings['port']} (a container name in Baetyl?): "
                "edit it in fnhub.yaml or re-run with --broker HOST:PORT"
            )
    else:
        raise BaetylImportError("no hub address: give hub.address or use --broker HOST:PORT")
    if hub.get("username"):
        settings["username"] = str(hub["username"])
    if hub.get("password"):
        settings["password"] = str(hub["password"])
        notes.append("the hub password is stored in fnhub.yaml in clear text: move it if needed")
    return {"type": "mqtt", "settings": settings}


def _runtime(name: str, service: str, images: dict[str, str], entry: dict[str, Any] | None) -> str:
    """python2 | python3 | sql | node, from the image, the service name or the handler."""
    for text in (images.get(service, ""), service):
        low = text.lower()
        if "function-sql" in low or low.endswith("-sql") or "sql" in low.split("-"):
            return "sql"
        if "python2" in low or "python27" in low:
            return "python2"
        if "python" in low:
            return "python3"
        if "node" in low:
            return "node"
    handler = str((entry or {}).get("handler", ""))
    if re.match(r"(?is)\s*select\b", handler):
        return "sql"
    raise BaetylImportError(
        f"function {name!r} (service {service!r}): unknown runtime; name it in the service "
        "(python3, python27, node, sql) or give application.yml, whose image tells"
    )


def _find_code(
    module: str, codedir: str, conf: Path, code_dirs: list[Path], ext: str = ".py"
) -> Path | None:
    base = Path(codedir).name
    file = f"{module}{ext}"
    candidates = []
    for d in code_dirs:
        candidates += [d / file, d / base / file]
    # Baetyl's own layout: <x>-conf/service.yml beside the <x>-code volume mounted as codedir
    # (the guide mounts function-sayjs-code at codedir .../function-sayhi, so the conf's name
    # comes first, then the codedir's)
    candidates.append(conf.parent / codedir / file)
    if conf.parent.name.endswith("-conf"):
        candidates.append(conf.parent.parent / f"{conf.parent.name[: -len('-conf')]}-code" / file)
    candidates += [conf.parent.parent / f"{base}-code" / file, conf.parent.parent / base / file]
    return next((c for c in candidates if c.is_file()), None)


WRAPPER = '''"""Baetyl function {name!r} (handler {handler}), imported by `fnhub import baetyl`.

fnhub calls `handler(event, context)` the Baetyl way: event is the parsed JSON (or bytes), context
has messageQOS, messageTopic, messageTimestamp, functionName, functionInvokeID.
"""

import fnhub
from {module} import {attr} as _handler


@fnhub.api({title!r}{options})
def handler(event, context):
    return _handler(event, context)
'''


NODE_WRAPPER = """// Baetyl function {name} (handler {handler}), imported by `fnhub import baetyl`.
//
// fnhub calls handler(event, context, callback) the Baetyl way: event is the parsed JSON (a
// Buffer when it is not JSON, {{}} when empty), context has messageQOS, messageTopic,
// messageTimestamp, functionName, functionInvokeID and invokeid; callback(null, value) publishes
// value (nothing for null, undefined or ""), callback(err) fails the call.
const fnhub = require('fnhub');
const _code = require('./{module}');

exports.handler = fnhub.api(
  {options},
  (event, context, callback) => _code.{attr}(event, context, callback),
);
"""


def _script_name(function: str) -> str:
    name = re.sub(r"\W", "_", function).strip("_").lower() or "function"
    if name[0].isdigit() or check_name(name):
        name = f"baetyl_{name}"
    return name


def _python_function(
    name: str,
    fconf: dict[str, Any],
    entry: tuple[Path, dict[str, Any]] | None,
    runtime: str,
    retries: int,
    code_dirs: list[Path],
    out: Conversion,
) -> str:
    if entry is None:
        raise BaetylImportError(
            f"function {name!r}: no runtime service.yml lists it (give the file with its handler)"
        )
    conf, spec = entry
    handler = str(spec.get("handler") or "")
    module, _, attr = handler.rpartition(".")
    if not module or not attr.isidentifier():
        raise BaetylImportError(f"{conf}: function {name!r}: handler must be 'module.function'")
    if "." in module:
        out.notes.append(f"{name}: handler module {module!r} is in a package: copy it by hand")
    options = [f"{k}={v!r}" for k, v in _options(name, fconf, retries).items()]
    script = _script_name(name)
    code = WRAPPER.format(
        name=name,
        handler=handler,
        module=module,
        attr=attr,
        title=f"{name} (Baetyl)",
        options="".join(f", {o}" for o in options),
    )
    _add_script(out, f"{script}.py", code)
    found = _find_code(module, str(spec.get("codedir") or ""), conf, code_dirs)
    if found is not None and "." not in module:
        for source in sorted(found.parent.glob("*.py")):  # its sibling modules may be imported
            _add_script(out, source.name, source.read_text())
    elif "." not in module:
        out.notes.append(
            f"{name}: code of {module}.py not found (codedir {spec.get('codedir')!r}): copy it to "
            f"scripts/{module}.py, or re-run with --code <folder holding {module}.py>"
        )
    if runtime == "python2":
        out.notes.append(f"{name}: written for Python 2; fnhub runs Python 3, check the code")
    return f"{script}.handler"


def _options(name: str, fconf: dict[str, Any], retries: int) -> dict[str, Any]:
    """Baetyl's timeout, retry.max and instance.max as fnhub.api options (snake_case)."""
    options: dict[str, Any] = {}
    timeout = fconf.get("timeout")
    if timeout:
        options["timeout"] = _seconds(timeout, name)
    if retries:
        options.update(retries=retries, retry_delay=0.1)
    instance_max = (fconf.get("instance") or {}).get("max")
    if instance_max:
        options["concurrency"] = int(instance_max)
    return options


def _node_function(
    name: str,
    fconf: dict[str, Any],
    entry: tuple[Path, dict[str, Any]] | None,
    retries: int,
    code_dirs: list[Path],
    out: Conversion,
    wrappers: set[str],
) -> str:
    """The wrapper `<function>.js` and the code folder's `*.js`; run after the Python functions,
    so a `.js` file whose name a `.py` script or a Node wrapper (`wrappers`) takes is renamed."""
    if entry is None:
        raise BaetylImportError(
            f"function {name!r}: no runtime service.yml lists it (give the file with its handler)"
        )
    conf, spec = entry
    handler = str(spec.get("handler") or "")
    module, _, attr = handler.partition(".")  # Baetyl's Node runtime: handler.split('.')
    if not module or not re.fullmatch(r"[A-Za-z_$][\w$]*", attr):
        raise BaetylImportError(f"{conf}: function {name!r}: handler must be 'module.function'")
    script = _script_name(name)
    if f"{script}.py" in out.scripts:
        raise BaetylImportError(
            f"function {name!r}: scripts/{script}.js would share its name with scripts/{script}.py"
        )
    found = (
        None
        if "/" in module
        else _find_code(module, str(spec.get("codedir") or ""), conf, code_dirs, ".js")
    )
    required = module
    if found is not None:
        for source in sorted(found.parent.glob("*.js")):  # its sibling modules may be required
            code = source.read_text()
            stem = _js_name(source.stem, code, out, taken=wrappers)
            _add_script(out, f"{stem}.js", code)
            if stem != source.stem:
                why = (
                    f"scripts/{source.stem}.py is Python code of the same name"
                    if f"{source.stem}.py" in out.scripts
                    else "its name is taken or is not a valid script name"
                )
                out.notes.append(
                    f"{name}: {source.name} written as scripts/{stem}.js ({why}); a file that "
                    f"requires './{source.stem}' must require './{stem}'"
                )
            if source == found:
                required = stem
        _npm_note(name, found.parent, out)
    elif "/" in module:
        out.notes.append(f"{name}: handler module {module!r} is in a subfolder: copy it by hand")
    else:
        out.notes.append(
            f"{name}: code of {module}.js not found (codedir {spec.get('codedir')!r}): copy it to "
            f"scripts/{module}.js, or re-run with --code <folder holding {module}.js>"
        )
    options = {"title": f"{name} (Baetyl)"}
    for key, value in _options(name, fconf, retries).items():
        options[re.sub(r"_(\w)", lambda m: m.group(1).upper(), key)] = value  # camelCase
    code = NODE_WRAPPER.format(
        name=name,
        handler=handler,
        module=required,
        attr=attr,
        options=json.dumps(options, ensure_ascii=False),
    )
    _add_script(out, f"{script}.js", code)
    return f"{script}.handler"


def _npm_note(name: str, folder: Path, out: Conversion) -> None:
    """Baetyl's Node code folders carry their packages (`node_modules`); fnhub installs them
    from the project's package.json and lock file with `npm ci`."""
    if (folder / "package.json").is_file():
        if (folder / "package-lock.json").is_file():
            todo = "copy package.json and package-lock.json into the project folder"
        else:
            todo = (
                "copy package.json into the project folder and run `npm install` there once to "
                "make package-lock.json"
            )
        out.notes.append(
            f"{name}: {folder / 'package.json'} lists npm packages: {todo} "
            "(fnhub installs them with `npm ci` at apply)"
        )
    elif (folder / "node_modules").is_dir():
        out.notes.append(
            f"{name}: {folder / 'node_modules'} holds npm packages: `npm install` them in the "
            "project folder (it writes package.json and package-lock.json; fnhub installs them "
            "with `npm ci` at apply)"
        )


def _js_name(stem: str, code: str, out: Conversion, taken: set[str]) -> str:
    """`stem` (`my-lib` → `my_lib`), or `<stem>_js`, `<stem>_js2`... when a `.py` script,
    another file or a wrapper holds it, or when it is not a valid script name (same rules as
    Python's: `json` → `json_js`)."""
    base = re.sub(r"\W", "_", stem).strip("_") or "code"
    if base[0].isdigit():
        base = f"js_{base}"
    candidates = [base, f"{base}_js"] + [f"{base}_js{n}" for n in range(2, 100)]
    for candidate in candidates:
        if (
            not check_name(candidate)
            and candidate not in taken
            and f"{candidate}.py" not in out.scripts
            and out.scripts.get(f"{candidate}.js", code) == code
        ):
            return candidate
    raise BaetylImportError(f"no free script name for {stem}.js")


def _add_script(out: Conversion, filename: str, code: str) -> None:
    if out.scripts.get(filename, code) != code:
        raise BaetylImportError(f"two different files would become scripts/{filename}")
    out.scripts[filename] = code


def _seconds(value: Any, name: str) -> float:
    if isinstance(value, int | float):
        return float(value)
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*", str(value))
    if not match:
        raise BaetylImportError(f"function {name!r}: timeout {value!r} is not a duration")
    scale = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[match.group(2) or "s"]
    return float(match.group(1)) * scale


def convert(
    paths: list[Path],
    *,
    code_dirs: list[Path] | None = None,
    connector: str = "baetyl",
    broker: str | None = None,
) -> Conversion:
    """Read the Baetyl files and build the fnhub resources (nothing is written here)."""
    files = _classify(paths)
    out = Conversion()
    out.connectors[connector] = _connector(files, broker, out.notes)
    entries: dict[str, tuple[Path, dict[str, Any]]] = {}
    for path, runtime_file in files.runtimes:
        for spec in runtime_file.get("functions") or []:
            if not isinstance(spec, dict) or not spec.get("name"):
                raise BaetylImportError(f"{path}: every entry of `functions` needs a `name`")
            entries[str(spec["name"])] = (path, spec)
    manager = files.manager or {}
    functions = {}
    for f in manager.get("functions") or []:
        if not isinstance(f, dict) or not f.get("name"):
            raise BaetylImportError("function manager: every entry of `functions` needs a `name`")
        functions[str(f["name"])] = f
    refs: dict[str, str | None] = {}
    node: list[tuple[str, dict[str, Any], tuple[Path, dict[str, Any]] | None, int]] = []
    for i, rule in enumerate(manager.get("rules") or []):
        where = f"rules[{i}]"
        if not isinstance(rule, dict):
            raise BaetylImportError(f"function manager: {where} must be a mapping")
        name = str(((rule.get("function") or {}).get("name")) or "")
        sub, pub = rule.get("subscribe") or {}, rule.get("publish") or {}
        if not name or not sub.get("topic") or not pub.get("topic"):
            raise BaetylImportError(
                f"function manager: {where} needs subscribe.topic, function.name and publish.topic"
            )
        if name not in functions:
            raise BaetylImportError(
                f"function manager: {where} names function {name!r}, missing from `functions`"
            )
        fconf = functions[name]
        entry = entries.get(name)
        runtime = _runtime(name, str(fconf.get("service", "")), files.images, entry and entry[1])
        data: dict[str, Any] = {"connector": connector, "topics": [str(sub["topic"])]}
        if runtime == "sql":
            if entry is None or not entry[1].get("handler"):
                raise BaetylImportError(
                    f"function {name!r}: SQL runtime without its statement: give the SQL "
                    "runtime's service.yml (functions[].handler holds the SELECT)"
                )
            data["sql"] = str(entry[1]["handler"])
        else:
            if name not in refs:
                retries = max(int((rule.get("retry") or {}).get("max", 3)) - 1, 0)
                if runtime == "node":  # written after every Python script (see _node_function)
                    node.append((name, fconf, entry, retries))
                    refs[name] = f"{_script_name(name)}.handler"
                else:
                    refs[name] = _python_function(
                        name, fconf, entry, runtime, retries, code_dirs or [], out
                    )
            data["function"] = refs[name]
        options: dict[str, Any] = {"qos": _qos(sub.get("qos"), f"{where}.subscribe")}
        if rule.get("clientid"):
            options["client_id"] = str(rule["clientid"])
        data["options"] = options
        data["publish"] = {"topic": str(pub["topic"]), "qos": _qos(pub.get("qos"), where)}
        base = _slug(str(rule.get("clientid") or f"rule-{name}"))
        out.subscriptions[_unique(base, out.subscriptions)] = data
    wrappers = {_script_name(n) for n, *_ in node}
    for name, fconf, entry, retries in node:
        _node_function(name, fconf, entry, retries, code_dirs or [], out, wrappers)
    for i, route in enumerate((files.hub or {}).get("subscriptions") or []):
        where = f"hub subscriptions[{i}]"
        source = (route or {}).get("source") or {}
        target = (route or {}).get("target") or {}
        if not source.get("topic") or not target.get("topic"):
            raise BaetylImportError(f"{where}: needs source.topic and target.topic")
        name = _unique(
            f"route-{_slug(source['topic'])}-to-{_slug(target['topic'])}", out.subscriptions
        )
        out.subscriptions[name] = {
            "connector": connector,
            "topics": [str(source["topic"])],
            "options": {"qos": _qos(source.get("qos"), f"{where}.source")},
            "publish": {"topic": str(target["topic"]), "qos": _qos(target.get("qos"), where)},
        }
    _check(out)
    return out


def _check(out: Conversion) -> None:
    """Refuse here what `fnhub apply` would refuse (bad SQL, cycles), with the same messages."""
    try:
        specs = [parse_spec({"name": n, **d}) for n, d in out.subscriptions.items()]
        check_cycles(specs, {n: SimpleNamespace(**c) for n, c in out.connectors.items()})
    except SpecError as exc:
        raise BaetylImportError(str(exc)) from None


def write_project(project: Path, out: Conversion, *, force: bool = False) -> list[str]:
    """Merge into `fnhub.yaml` and write the scripts; returns what was done, line by line."""
    path = project / "fnhub.yaml"
    data = load_yaml(path) if path.exists() else {}
    scripts = project / "scripts"
    for filename, code in out.scripts.items():
        target = scripts / filename
        if target.exists() and target.read_text() != code and not force:
            raise BaetylImportError(f"{target} exists with other content (use --force to replace)")
        stem, ext = filename.rsplit(".", 1)
        other = scripts / f"{stem}.{'js' if ext == 'py' else 'py'}"
        if other.exists() and other.name not in out.scripts:
            raise BaetylImportError(
                f"scripts/{filename} would share its name with {other} (a script name is one "
                "file, .py or .js): rename or remove it first"
            )
    done = []
    for section in ("connectors", "subscriptions"):
        current = data.get(section) or {}
        if not isinstance(current, dict):
            raise BaetylImportError(f"{path}: `{section}` must be a mapping")
        for name, value in getattr(out, section).items():
            verb = "replaced" if name in current and current[name] != value else "added"
            if current.get(name) != value:
                done.append(f"{section[:-1]} {name} {verb}")
            current[name] = value
        data[section] = current
    project.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    scripts.mkdir(exist_ok=True)
    for filename, code in out.scripts.items():
        target = scripts / filename
        if not target.exists() or target.read_text() != code:
            target.write_text(code)
            done.append(f"scripts/{filename} written")
    return done
