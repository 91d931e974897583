"""Hatch build hook: build the web console (console/ → src/fnhub/console/static/) when it is
missing or older than its sources, so `pip install .` and `pip install -e .` on a fresh machine
ship it. Needs Node and npm at build time only; the installed package needs neither.

Set FNHUB_SKIP_CONSOLE_BUILD=1 to build without it (the server then says the console is not built).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

SOURCES = ("src", "build.mjs", "package.json", "package-lock.json")
OUTPUT = Path("src", "fnhub", "console", "static")


def _newest(paths: list[Path]) -> float:
    newest = 0.0
    for path in paths:
        if path.is_file():
            newest = max(newest, path.stat().st_mtime)
        elif path.is_dir():
            newest = max([newest, *(p.stat().st_mtime for p in path.rglob("*") if p.is_file())])
    return newest


def stale(root: Path) -> bool:
    """True when the built console is missing or older than any of its sources."""
    index = root / OUTPUT / "index.html"
    if not index.is_file():
        return True
    console = root / "console"
    return _newest([console / s for s in SOURCES]) > index.stat().st_mtime


def build_console(root: Path) -> None:
    console = root / "console"
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError(
            "building fnhub's web console needs Node.js 20+ and npm on PATH "
            "(or set FNHUB_SKIP_CONSOLE_BUILD=1 to install without the console)"
        )
    lock = console / "package-lock.json"
    modules = console / "node_modules" / ".package-lock.json"
    if not modules.is_file() or modules.stat().st_mtime < lock.stat().st_mtime:
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=console, check=True)
    subprocess.run([npm, "run", "build"], cwd=console, check=True)


class CustomBuildHook(BuildHookInterface):
    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        root = Path(self.root)
        if not (root / "console" / "package.json").is_file():
            return  # building from an sdist without console sources: ship what is there
        if os.environ.get("FNHUB_SKIP_CONSOLE_BUILD") != "1" and stale(root):
            build_console(root)
        # the output is git-ignored, so it has to be named to get into the wheel
        build_data["artifacts"].append(f"/{OUTPUT.as_posix()}")
