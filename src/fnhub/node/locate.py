"""Finding the machine's `node` (>= 18): from settings, else on PATH, checked by running it.

Node is not bundled: JavaScript functions run on the machine's own Node, so a missing or too old
one must be said once, clearly, with what was tried and how to fix it, rather than per task.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from dataclasses import dataclass

MIN_NODE_MAJOR = 18
_VERSION = re.compile(r"^v(\d+)\.(\d+)\.(\d+)")


class NodeNotFound(Exception):
    """No usable `node`; the message says what was tried and how to fix it."""


@dataclass(frozen=True)
class NodeBinary:
    path: str
    version: tuple[int, int, int]


def find_node(configured: str | None = None) -> NodeBinary:
    """The `node` to run: `configured` (settings.node_path) when given, else the one on PATH.
    Cached per path and PATH, since each check runs `node --version` (about 30 ms)."""
    return _find(configured or None, os.environ.get("PATH", ""))


@functools.lru_cache(maxsize=16)
def _find(configured: str | None, path_env: str) -> NodeBinary:
    if configured is not None:
        found = shutil.which(configured) if os.sep not in configured else configured
        tried = f"node_path setting {configured!r}"
        if found is None or not os.path.isfile(found) or not os.access(found, os.X_OK):
            raise NodeNotFound(
                f"{tried} is not an executable file: install Node {MIN_NODE_MAJOR} or newer "
                "and set node_path (FNHUB_NODE_PATH) to its `node`, or unset it to use the "
                "one on PATH"
            )
    else:
        found = shutil.which("node", path=path_env)
        tried = "`node` on PATH"
        if found is None:
            raise NodeNotFound(
                f"no {tried} ({path_env or 'PATH is empty'}): install Node {MIN_NODE_MAJOR} or "
                "newer (e.g. `apt-get install nodejs`) or set node_path (FNHUB_NODE_PATH) to "
                "its `node`"
            )
    try:
        out = subprocess.run(
            [found, "--version"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise NodeNotFound(f"{tried} ({found}) does not run: {exc}") from None
    match = _VERSION.match(out.stdout.strip())
    if out.returncode != 0 or match is None:
        detail = (out.stderr or out.stdout).strip()[:200]
        raise NodeNotFound(
            f"{tried} ({found}) is not Node: `--version` answered {detail!r} "
            f"(exit code {out.returncode})"
        )
    version = (int(match[1]), int(match[2]), int(match[3]))
    if version[0] < MIN_NODE_MAJOR:
        raise NodeNotFound(
            f"{tried} ({found}) is Node {'.'.join(map(str, version))}; fnhub needs "
            f"{MIN_NODE_MAJOR} or newer: upgrade it, or set node_path (FNHUB_NODE_PATH) to a "
            "newer `node`"
        )
    return NodeBinary(os.path.abspath(found), version)
