"""Run one real fnhub server (`fnhub.server.run.build_server`) in its own process, for kill -9
tests and the benchmark.

Usage: python hubproc.py '<settings json>'   (listens on settings.port; the caller migrates the
database and creates API keys first, see `harness.prepare_server`)
"""

from __future__ import annotations

import logging
import os
import sys

from fnhub.config import Settings
from fnhub.server.run import build_server

if __name__ == "__main__":
    # INFO by default, as `fnhub server` logs: per-request logging would show up in the benchmark
    logging.basicConfig(level=os.environ.get("HUBPROC_LOG_LEVEL", "INFO"))
    settings = Settings.model_validate_json(sys.argv[1])
    build_server(settings, port=settings.port).run()
