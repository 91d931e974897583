"""Run a hub server in its own process (for kill -9 tests and the benchmark).

Usage: python hubproc.py '<settings json>'   (listens on settings.port)
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import uvicorn

sys.path.insert(0, str(Path(__file__).parent))

from harness import hub_app

from fnhub.config import Settings

if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    settings = Settings.model_validate_json(sys.argv[1])
    uvicorn.run(hub_app(settings), host="127.0.0.1", port=settings.port, log_level="warning")
