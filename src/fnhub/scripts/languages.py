"""The languages a script may be written in, and how a project file names its language.

A script is one name whatever its language: `scripts/weather.py` and `scripts/weather.js` would
both be the script `weather`, so a project holding both is refused rather than one silently
winning. The language travels with every version (database and Redis mirror): the worker runs a
JavaScript version in its Node process and a Python one in itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

PYTHON = "python"
JAVASCRIPT = "javascript"
LANGUAGES = (PYTHON, JAVASCRIPT)
Language = Literal["python", "javascript"]

#: file suffix → language (`.mjs` is always an ES module, `.cjs` CommonJS; `.js` is either,
#: told from its code by the Node host)
SUFFIXES: dict[str, str] = {
    ".py": PYTHON,
    ".js": JAVASCRIPT,
    ".mjs": JAVASCRIPT,
    ".cjs": JAVASCRIPT,
}

#: the suffix a language's script is written under when one file is made for it
FILE_SUFFIX = {PYTHON: ".py", JAVASCRIPT: ".js"}


class ScriptFileClash(ValueError):
    """Two files of a project's `scripts/` folder would be the same script."""

    def __init__(self, script: str, message: str) -> None:
        super().__init__(message)
        self.script = script


def language_of(path: Path) -> str | None:
    """The language of a script file, or None when the file is no script."""
    return SUFFIXES.get(path.suffix)


def read_folder(folder: Path) -> tuple[dict[str, str], dict[str, str]]:
    """(name → code, name → language) of the script files in `folder`; a name held by two
    files (`a.py` and `a.js`) raises ScriptFileClash naming both."""
    codes: dict[str, str] = {}
    languages: dict[str, str] = {}
    seen: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        language = language_of(path)
        if language is None or not path.is_file():
            continue
        name = path.stem
        if name in seen:
            raise ScriptFileClash(
                name,
                f"scripts/{seen[name].name} and scripts/{path.name} would both be the script "
                f"'{name}': rename one of them",
            )
        seen[name] = path
        codes[name] = path.read_text()
        languages[name] = language
    return codes, languages
