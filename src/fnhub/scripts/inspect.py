"""Validating scripts before they are published, in a child process.

Publishing executes the script's top-level code to find its exported functions. That code is the
user's: it may loop, exit or leak state, so it runs in a short-lived subprocess with a timeout, and
the publishing process (server or CLI) only reads the JSON answer.
"""

from __future__ import annotations

import ast
import importlib
import importlib.machinery
import importlib.util
import json
import os
import subprocess
import sys
import threading
import traceback
from typing import Any, TypedDict

import msgspec

from fnhub.functions import API_ATTR, FunctionInfo, describe
from fnhub.scripts.modules import install_finder, script_filename

INSPECT_TIMEOUT_SECONDS = 30.0


class Problem(msgspec.Struct, omit_defaults=True):
    """Why a script cannot be published, and where in its code when that is known: 1-based
    line and column (`end_column` exclusive), so an editor can mark the spot."""

    message: str
    line: int | None = None
    column: int | None = None
    end_line: int | None = None
    end_column: int | None = None

    def error(self, script: str) -> ScriptError:
        return ScriptError(
            script, self.message, self.line, self.column, self.end_line, self.end_column
        )


class Position(TypedDict, total=False):
    """Where in a script a problem is (1-based): the parts that are known."""

    line: int
    column: int
    end_line: int
    end_column: int


class ScriptError(Exception):
    """A script cannot be published; the message says where and why, `position` (when known)
    points into the code of `script`."""

    def __init__(
        self,
        script: str,
        message: str,
        line: int | None = None,
        column: int | None = None,
        end_line: int | None = None,
        end_column: int | None = None,
    ) -> None:
        super().__init__(f"{script}: {message}")
        self.script = script
        self.detail = message
        self.line = line
        self.column = column
        self.end_line = end_line
        self.end_column = end_column

    @property
    def position(self) -> Position:
        """line, column, end_line, end_column: those that are known."""
        known = Position()
        if self.line is not None:
            known["line"] = self.line
        if self.column is not None:
            known["column"] = self.column
        if self.end_line is not None:
            known["end_line"] = self.end_line
        if self.end_column is not None:
            known["end_column"] = self.end_column
        return known


def check_name(name: str) -> str | None:
    if not name.isidentifier() or name.startswith("_"):
        return "script names must be Python identifiers not starting with '_'"
    if name == "fnhub" or name in sys.stdlib_module_names:
        return f"'{name}' would shadow the Python module of that name"
    return None


def shadows_installed(name: str) -> bool:
    """True when an installed module owns this top-level name. The current directory and
    namespace folders do not count: a project folder called `demo` must not block a script."""
    if name in sys.builtin_module_names:
        return True
    cwd = os.path.realpath(os.getcwd())
    paths = [p for p in sys.path if p and os.path.realpath(p) != cwd]
    try:
        spec = importlib.machinery.PathFinder.find_spec(name, paths)
    except (ImportError, ValueError):
        return False
    return spec is not None and spec.origin not in (None, "namespace")


def _is_api_decorator(node: ast.expr) -> bool:
    """`@fnhub.api(...)`, `@api`, and DataFlux Func's `@DFF.API(...)` / `@dff.api`."""
    target = node.func if isinstance(node, ast.Call) else node
    if isinstance(target, ast.Attribute):
        return target.attr in ("api", "API")
    return isinstance(target, ast.Name) and target.id == "api"


def _syntax_problem(exc: SyntaxError, code: str) -> Problem:
    # the line from `code` itself: Python reads `exc.text` from a file named like the
    # script when one exists (the publisher's working directory), which is other code
    lines = code.splitlines()
    at = exc.lineno
    line = (
        lines[at - 1] if at is not None and 0 < at <= len(lines) else (exc.text or "").rstrip("\n")
    )
    pointer = f"\n    {line}\n    {' ' * max((exc.offset or 1) - 1, 0)}^" if line else ""
    message = f"syntax error at line {exc.lineno}, column {exc.offset}: {exc.msg}{pointer}"
    end_line, end_column = exc.end_lineno, exc.end_offset
    if not end_line or not end_column or (end_line, end_column) <= (exc.lineno, exc.offset):
        end_line = end_column = None  # Python knows no span, only the spot
    return Problem(message, exc.lineno, exc.offset, end_line, end_column)


def check_syntax(name: str, code: str) -> Problem | None:
    """Syntax errors (with line and column) and duplicate exported names, without running code."""
    try:
        tree = ast.parse(code, filename=f"{name}.py")
    except SyntaxError as exc:
        return _syntax_problem(exc, code)
    seen: dict[str, int] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and any(
            _is_api_decorator(d) for d in node.decorator_list
        ):
            if node.name in seen:
                return Problem(
                    f"duplicate function name '{node.name}' "
                    f"(lines {seen[node.name]} and {node.lineno})",
                    node.lineno,
                    node.col_offset + 1,
                )
            seen[node.name] = node.lineno
    return None


def _frame_script(frame: traceback.FrameSummary) -> str | None:
    """The script a traceback frame ran in (filenames as `modules.script_filename` makes them)."""
    if not frame.filename.startswith("<script "):
        return None
    return frame.filename[len("<script ") :].split("@")[0]


def _describe_failure(name: str, exc: BaseException) -> Problem:
    """The message names the deepest script frame (maybe of an imported script); the line is
    the deepest one in `name` itself, the line its editor should mark (an import of a script
    that failed is where this script failed)."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = ""
    for frame in reversed(frames):
        script = _frame_script(frame)
        if script is not None:
            where = f" ({script}.py line {frame.lineno}: {(frame.line or '').strip()})"
            break
    line = next((f.lineno for f in reversed(frames) if _frame_script(f) == name), None)
    kind = "import failed" if isinstance(exc, ImportError) else "error while loading"
    return Problem(f"{kind}: {type(exc).__name__}: {exc}{where}", line)


def _name_problem(name: str) -> Problem | None:
    message = check_name(name)
    return None if message is None else Problem(message)


def inspect_in_process(
    pending: dict[str, str], active: dict[str, tuple[str, str]]
) -> dict[str, Any]:
    """Load each pending script (imports see pending code first) and describe its functions."""
    import hashlib

    def lookup(module: str) -> tuple[str, str] | None:
        if module in pending:
            code = pending[module]
            return code, hashlib.sha256(code.encode()).hexdigest()
        return active.get(module)

    install_finder(lookup)
    ok: dict[str, list[Any]] = {}
    errors: dict[str, Problem] = {}
    for name, code in pending.items():
        problem = _name_problem(name) or check_syntax(name, code)
        if problem:
            errors[name] = problem
            continue
        try:
            module = importlib.import_module(name)
        except BaseException as exc:  # the user's top-level code may raise anything
            errors[name] = _describe_failure(name, exc)
            continue
        functions: list[FunctionInfo] = []
        for value in vars(module).values():
            if callable(value) and hasattr(value, API_ATTR) and value.__module__ == name:
                try:
                    functions.append(describe(name, value))
                except (TypeError, ValueError) as exc:
                    code_object = getattr(value, "__code__", None)
                    line = getattr(code_object, "co_firstlineno", None)
                    errors[name] = Problem(f"cannot export {value.__name__}: {exc}", line)
        if name not in errors:
            ok[name] = [msgspec.to_builtins(f) for f in functions]
    return {"ok": ok, "errors": {n: msgspec.to_builtins(p) for n, p in errors.items()}}


class _Spare:
    """One inspector process started ahead (`keep_warm`), waiting on its stdin with Python and
    fnhub imported: a publish then skips the interpreter's start-up (most of a publish's time
    on a busy machine), which is what lets `serve --reload` publish within a second of a save."""

    lock = threading.Lock()
    process: subprocess.Popen[bytes] | None = None
    wanted = False


def _start_inspector() -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "fnhub.scripts.inspect"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _inspector() -> subprocess.Popen[bytes]:
    """The spare process if one waits (a new spare starts meanwhile), else a new process."""
    with _Spare.lock:
        proc, _Spare.process = _Spare.process, None
        if proc is None or proc.poll() is not None:
            proc = _start_inspector()
        if _Spare.wanted:
            _Spare.process = _start_inspector()
        return proc


def keep_warm(enabled: bool = True) -> None:
    """Keep a spare inspector process ready (or, with False, end the one waiting)."""
    with _Spare.lock:
        _Spare.wanted = enabled
        if enabled and _Spare.process is None:
            _Spare.process = _start_inspector()
        elif not enabled and _Spare.process is not None:
            _Spare.process.kill()
            _Spare.process.communicate()
            _Spare.process = None


def inspect_scripts(
    pending: dict[str, str], active: dict[str, tuple[str, str]]
) -> dict[str, list[FunctionInfo]]:
    """Validate `pending` scripts in a subprocess; raise ScriptError naming the first broken one."""
    for name, code in pending.items():  # cheap checks first, without a process
        problem = _name_problem(name) or check_syntax(name, code)
        if problem is None and shadows_installed(name):
            problem = Problem(f"'{name}' would shadow the installed Python package of that name")
        if problem:
            raise problem.error(name)
    request = json.dumps({"pending": pending, "active": active})
    proc = _inspector()
    try:
        stdout, stderr = proc.communicate(request.encode(), timeout=INSPECT_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired as exc:
        proc.kill()
        proc.communicate()
        names = ", ".join(pending)
        raise ScriptError(names, f"loading took over {INSPECT_TIMEOUT_SECONDS:g}s") from exc
    try:
        answer = json.loads(stdout.decode().strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError) as exc:
        detail = stderr.decode(errors="replace").strip()[-2000:]
        raise ScriptError(
            ", ".join(pending),
            f"the script process ended without an answer (exit code {proc.returncode}): {detail}",
        ) from exc
    if answer["errors"]:
        name, problem = next(iter(answer["errors"].items()))
        raise msgspec.convert(problem, Problem).error(name)
    return {
        name: [msgspec.convert(f, FunctionInfo) for f in functions]
        for name, functions in answer["ok"].items()
    }


def _main() -> None:
    request = json.loads(sys.stdin.read())
    active = {k: (v[0], v[1]) for k, v in request["active"].items()}
    # user code may print: keep stdout for the one JSON line we answer with
    real_stdout = sys.stdout
    sys.stdout = sys.stderr
    answer = inspect_in_process(request["pending"], active)
    real_stdout.write("\n" + json.dumps(answer) + "\n")
    real_stdout.flush()
    sys.stderr.flush()
    # the answer is out: skip the interpreter's tear-down (and the user's atexit hooks and
    # threads), which takes longer than the inspection itself
    os._exit(0)


if __name__ == "__main__":
    _main()

__all__ = ["Problem", "ScriptError", "inspect_scripts", "script_filename"]
