"""Env variable types and the one parser of their values (API, CLI, `fnhub.yaml`, workers).

A value is kept as the text it was given (a password sealed); its type says what a script
gets back. A value that its type cannot read is refused when it is saved, with the reason, so
a script never meets one.
"""

from __future__ import annotations

import math
import re
from typing import Any, Final, Literal, cast, get_args

import orjson

EnvType = Literal["string", "password", "integer", "float", "boolean", "json", "list"]
TYPES: Final[tuple[str, ...]] = get_args(EnvType)
#: DataFlux Func's names for the same types
ALIASES: Final[dict[str, str]] = {"commaArray": "list", "str": "string", "int": "integer"}
NAME_PATTERN: Final[str] = r"^[A-Za-z0-9_.-]{1,128}$"
_NAME = re.compile(NAME_PATTERN)
_INTEGER = re.compile(r"^[+-]?[0-9]+$")
_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})
#: values of every type are at most this long (the column is TEXT; a JSON document fits)
MAX_VALUE_CHARS: Final[int] = 60_000
#: what an API answer, a CLI line or a task record shows instead of a password
MASK: Final[str] = "*****"


class InvalidEnv(ValueError):
    """A name, type or value that cannot be saved; the message says why."""


def check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidEnv(f"env name {name!r}: use 1-128 letters, digits, '_', '.' or '-'")
    return name


def check_type(type_: str) -> EnvType:
    """The type named `type_` (DataFlux Func's `commaArray` is `list`)."""
    name = ALIASES.get(type_, type_)
    if name not in TYPES:
        raise InvalidEnv(f"unknown env type {type_!r} (known: {', '.join(TYPES)})")
    return cast(EnvType, name)


def as_text(value: Any, type_: EnvType) -> str:
    """A value as given in `fnhub.yaml` (YAML scalars, or a list/object for list and json) as
    the stored text."""
    if isinstance(value, str):
        return value
    if type_ == "json":
        try:
            return orjson.dumps(value).decode()
        except orjson.JSONEncodeError as exc:
            raise InvalidEnv(f"not valid JSON: {exc}") from None
    if type_ == "list" and isinstance(value, list):
        return ",".join(str(item) for item in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    raise InvalidEnv(f"a {type_} value must be text, got {type(value).__name__}")


def check_text(text: str, what: str = "the value") -> str:
    """Text every database keeps: no NUL (PostgreSQL refuses it), valid Unicode."""
    if "\x00" in text:
        raise InvalidEnv(f"{what} holds a NUL character, which databases refuse")
    try:
        text.encode()
    except UnicodeEncodeError:
        raise InvalidEnv(f"{what} is not valid Unicode (a lone surrogate)") from None
    return text


def parse(text: str, type_: EnvType) -> Any:
    """What a script gets for stored `text` of `type_`; InvalidEnv naming the reason if the
    text is not one."""
    if len(text) > MAX_VALUE_CHARS:
        raise InvalidEnv(f"the value is {len(text)} characters, over {MAX_VALUE_CHARS}")
    check_text(text)
    if type_ in ("string", "password"):
        return text
    stripped = text.strip()
    if type_ == "integer":
        if not _INTEGER.match(stripped):
            raise InvalidEnv(f"{_shown(text)} is not an integer")
        return int(stripped)
    if type_ == "float":
        try:
            number = float(stripped)
        except ValueError:
            raise InvalidEnv(f"{_shown(text)} is not a number") from None
        if not math.isfinite(number):
            raise InvalidEnv(f"{_shown(text)} is not a finite number")
        return number
    if type_ == "boolean":
        lowered = stripped.lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise InvalidEnv(f"{_shown(text)} is not a boolean (true/false, yes/no, on/off, 1/0)")
    if type_ == "json":
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise InvalidEnv(f"not valid JSON: {exc}") from None
    if type_ == "list":
        return [item.strip() for item in text.split(",")] if stripped else []
    raise InvalidEnv(f"unknown env type {type_!r}")


def _shown(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:40] + "...")
