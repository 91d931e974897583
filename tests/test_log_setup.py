"""JSON logging in a real process: a logged exception, a Python warning and an uncaught
exception each come out as one JSON object per line on stderr."""

from __future__ import annotations

import json
import subprocess
import sys

PROGRAM = """
import logging, warnings
from fnhub.log_setup import configure_logging

configure_logging(logging.INFO, "json")
log = logging.getLogger("probe")
log.info("plain %s", "line")
try:
    {}["missing"]
except KeyError:
    log.exception("caught it")
warnings.warn("mind the gap")
raise RuntimeError("nobody caught this")
"""


def test_json_lines_from_a_real_process() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert done.stdout == ""
    records = [json.loads(line) for line in done.stderr.splitlines()]
    assert [(r["level"], r["logger"]) for r in records] == [
        ("INFO", "probe"),
        ("ERROR", "probe"),
        ("WARNING", "py.warnings"),
        ("CRITICAL", "fnhub"),
    ]
    plain, caught, warned, uncaught = records
    assert plain["message"] == "plain line" and "exception" not in plain
    assert plain["time"].endswith("Z") and "T" in plain["time"]
    assert caught["message"] == "caught it" and "KeyError: 'missing'" in caught["exception"]
    assert "mind the gap" in warned["message"]
    assert uncaught["message"] == "uncaught exception"
    assert "RuntimeError: nobody caught this" in uncaught["exception"]


def test_text_lines_by_default() -> None:
    program = (
        "import logging\nfrom fnhub.log_setup import configure_logging\n"
        "configure_logging(logging.INFO)\nlogging.getLogger('probe').warning('as text')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60
    )
    assert done.stderr.rstrip().endswith("WARNING probe: as text")
    assert not done.stderr.startswith("{")
