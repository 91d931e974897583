"""Validating a publish of scripts in several languages: each language's checker sees its own.

Python scripts are loaded in a Python child (`scripts.inspect`), JavaScript ones in a Node child
(`node.inspect`); each checker gets the active scripts of its language, the ones a new script
may import. Nothing is loaded in the publishing process.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from fnhub.functions import FunctionInfo
from fnhub.scripts.inspect import ScriptError, inspect_scripts
from fnhub.scripts.languages import JAVASCRIPT, PYTHON


def inspect_all(
    pending: Mapping[str, str],
    languages: Mapping[str, str],
    active: Mapping[str, tuple[str, str, str]],
    *,
    node_path: str | None = None,
    modules_dir: Path | None = None,
) -> dict[str, list[FunctionInfo]]:
    """The functions each pending script exports; ScriptError names the first broken one.
    `active`: name → (code, hash, language) of the active versions."""
    described: dict[str, list[FunctionInfo]] = {}
    for language in (PYTHON, JAVASCRIPT):
        mine = {n: c for n, c in pending.items() if languages[n] == language}
        if not mine:
            continue
        theirs = {
            n: (code, hash_)
            for n, (code, hash_, lang) in active.items()
            if lang == language and n not in mine
        }
        if language == PYTHON:
            described.update(inspect_scripts(mine, theirs))
        else:
            described.update(_inspect_js(mine, theirs, node_path, modules_dir))
    return described


def _inspect_js(
    pending: dict[str, str],
    active: dict[str, tuple[str, str]],
    node_path: str | None,
    modules_dir: Path | None,
) -> dict[str, list[FunctionInfo]]:
    from fnhub.node.locate import NodeNotFound, find_node

    try:
        node = find_node(node_path)
    except NodeNotFound as exc:
        raise ScriptError(", ".join(pending), f"cannot publish JavaScript: {exc}") from None
    from fnhub.node.inspect import inspect_js

    return inspect_js(pending, active, node=node, modules_dir=modules_dir)
