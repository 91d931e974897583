"""Password env values kept out of what a task leaves behind.

A worker process that read password env variables (`fnhub.env`) remembers their clear values
here. Whatever the task then prints, logs, returns or raises is masked before it leaves the
process (`mask_result`, called by `worker.execute` on every result: output, result, error
message, traceback), and so is every log line the process writes (a log record factory,
installed with the first password). A process that never read one pays one empty-list test
per task.
"""

from __future__ import annotations

import base64
import logging
import sys
import threading
from collections.abc import Iterable
from typing import Any, TextIO, cast

import msgspec
import orjson

from fnhub.envs.values import MASK
from fnhub.tasks import TaskResult

#: clear values to hide and their escaped spellings, longest first
_secrets: list[str] = []
_lock = threading.Lock()
_installed = False
#: at most this many spellings are remembered (old passwords of a long-lived process)
MAX_REMEMBERED = 2000


def _spellings(value: str) -> set[str]:
    """The value and how `repr` and JSON would print it (quotes escaped...)."""
    found = {value, repr(value)[1:-1], orjson.dumps(value).decode()[1:-1]}
    return {s for s in found if s}


def remember(values: Iterable[str]) -> None:
    """Mask these clear values from now on in this process."""
    global _secrets
    new = set().union(*(_spellings(v) for v in values if v))
    if not new - set(_secrets):
        return
    with _lock:
        merged = sorted(set(_secrets) | new, key=len, reverse=True)[:MAX_REMEMBERED]
        _secrets = merged
        _install_log_masking()


def known() -> bool:
    return bool(_secrets)


def mask_text(text: str) -> str:
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def mask_value(value: Any) -> Any:
    """`value` (JSON-like) with every string, keys included, masked."""
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {mask_value(k): mask_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_value(v) for v in value]
    return value


def _mask_bytes(encoded: str) -> str:
    """Bytes a function returned (base64, as `worker.execute` carries them), masked."""
    raw = base64.b64decode(encoded)
    for secret in _secrets:
        raw = raw.replace(secret.encode(), MASK.encode())
    return base64.b64encode(raw).decode()


def mask_result(result: TaskResult) -> TaskResult:
    """The result with the passwords this process knows masked in its output, result (bytes
    included), error message and traceback; the same object when it knows none."""
    if not _secrets:
        return result
    from fnhub.worker.execute import BYTES_MARKER

    value = result.result
    if isinstance(value, dict) and list(value) == [BYTES_MARKER]:
        value = {BYTES_MARKER: _mask_bytes(value[BYTES_MARKER])}
    else:
        value = mask_value(value)
    return msgspec.structs.replace(
        result,
        result=value,
        logs=mask_text(result.logs),
        error_message=None if result.error_message is None else mask_text(result.error_message),
        traceback=None if result.traceback is None else mask_text(result.traceback),
    )


class _MaskedStream:
    """A process's stdout or stderr, masking the known passwords in every write."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(mask_text(text) if _secrets else text)
        return len(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def guard_process() -> None:
    """Mask the passwords this process will read in its log records and in what reaches its
    stdout and stderr (a worker child calls it once, before any task)."""
    with _lock:
        _install_log_masking()
        if sys.stdout is not None and not isinstance(sys.stdout, _MaskedStream):
            sys.stdout = cast(TextIO, _MaskedStream(sys.stdout))
        if sys.stderr is not None and not isinstance(sys.stderr, _MaskedStream):
            sys.stderr = cast(TextIO, _MaskedStream(sys.stderr))


def _install_log_masking() -> None:
    """Mask every log record of this process as it is made (before any handler sees it)."""
    global _installed
    if _installed:
        return
    _installed = True
    make = logging.getLogRecordFactory()

    def masked_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make(*args, **kwargs)
        if _secrets:
            try:
                message = record.getMessage()
            except Exception:  # a bad format string: left for the handler to report
                return record
            record.msg, record.args = mask_text(message), None
            if record.exc_info and record.exc_info[1] is not None:
                formatted = logging.Formatter().formatException(record.exc_info)
                record.exc_text = mask_text(formatted)
        return record

    logging.setLogRecordFactory(masked_record)
