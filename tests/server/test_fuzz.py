"""Schemathesis over the whole OpenAPI of a real server + worker with an admin key: coverage,
fuzzing and stateful phases, all its checks but two (see `fuzz_run.EXCLUDED_CHECKS`) plus
`fuzz_checks.error_shape`; then the same with Redis down. Each run is bounded in time
(`--max-time`) and happens in a network namespace of its own (`fuzz_run` says why).

A failure's output names the seed and a curl command that reproduces each case."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

ROOT = Path(__file__).resolve().parents[2]


def _namespaces() -> bool:
    if not shutil.which("unshare") or not shutil.which("ip"):
        return False
    return subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0


pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not shutil.which("redis-server"), reason="needs redis-server"),
    pytest.mark.skipif(
        not _namespaces(), reason="needs `unshare -n`: the fuzzer's URLs must reach nothing"
    ),
]


def _fuzz(folder: Path, *args: str, timeout: float) -> dict[str, Any]:
    paths = [str(ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    subprocess.run(
        ["unshare", "-n", sys.executable, "-m", "tests.server.fuzz_run", str(folder), *args],
        env=env,
        cwd=ROOT,
        timeout=timeout,
        check=True,
    )
    return orjson.loads((folder / "result.json").read_bytes())


def _report(result: dict[str, Any]) -> str:
    return f"{result['output'][-12000:]}\n--- server log ---\n{result['server_log'][-4000:]}"


@pytest.mark.timeout(300)
def test_schemathesis_finds_no_server_error(tmp_path: Path) -> None:
    result = _fuzz(tmp_path, "--max-time", "75", "--max-examples", "8", timeout=280)
    assert result["exit_code"] == 0, _report(result)
    assert not result["internal_errors"], _report(result)


@pytest.mark.timeout(240)
def test_schemathesis_with_redis_down_finds_only_json_503s_and_the_server_recovers(
    tmp_path: Path,
) -> None:
    result = _fuzz(tmp_path, "--outage", "--max-time", "30", "--max-examples", "5", timeout=220)
    assert result["exit_code"] == 0, _report(result)
    assert not result["internal_errors"], _report(result)
    assert result["recovered_after"] is not None, _report(result)
