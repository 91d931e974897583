"""How every role logs: plain text lines, or with `log_format: json` one JSON object per line.

A JSON line holds `time` (UTC, ISO 8601 with milliseconds), `level`, `logger`, `message` and,
when the record carries one, `exception` (the formatted traceback) and `stack`, plus the fields
a record was given as `extra={"fields": {...}}` (the access log's request id, method, path,
status, ms, client): what a log collector indexes without parsing text. In JSON mode Python's
warnings and an uncaught exception's traceback go through logging as well, so a process's stderr
holds JSON lines only.
"""

from __future__ import annotations

import io
import logging
import sys
import time
from types import TracebackType
from typing import Any

import orjson

LOG_FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        line: dict[str, Any] = {
            "time": f"{seconds}.{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            for name, value in fields.items():
                line.setdefault(name, value)
        return orjson.dumps(line, default=str).decode()


def _log_uncaught(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, exc, tb)
        return
    logging.getLogger("fnhub").critical("uncaught exception", exc_info=(kind, exc, tb))


def configure_logging(level: int, log_format: str = "text", text_format: str = TEXT_FORMAT) -> None:
    """The root logger's one handler, on stderr, in the chosen format (replacing any)."""
    handler = logging.StreamHandler()
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
        logging.captureWarnings(True)
        sys.excepthook = _log_uncaught
    else:
        handler.setFormatter(logging.Formatter(text_format))
    logging.basicConfig(level=level, handlers=[handler], force=True)


def serve_level(log_format: str, verbose: bool) -> int:
    """The roles' log level inside `fnhub serve`: a person's terminal, where serve's own lines
    say what happens (scripts published, failed tasks, where the console is), so the roles
    add warnings and errors only; debug with `--verbose`; everything (INFO) with JSON logs,
    which a collector reads rather than a person."""
    if verbose:
        return logging.DEBUG
    return logging.INFO if log_format == "json" else logging.WARNING


class LogLines(io.StringIO):
    """A text stream whose lines become log records: what a command prints for people (rich
    console output of `fnhub serve`) goes through the JSON handler in JSON mode."""

    def __init__(self, logger: logging.Logger, level: int = logging.INFO) -> None:
        super().__init__()
        self.logger = logger
        self.level = level
        self._partial = ""

    def write(self, text: str) -> int:
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()
        for line in lines:
            if line.strip():
                self.logger.log(self.level, line.rstrip())
        return len(text)

    def flush(self) -> None:
        if self._partial.strip():
            self.logger.log(self.level, self._partial.rstrip())
        self._partial = ""

    def isatty(self) -> bool:
        return False
