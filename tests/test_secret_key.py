"""The generated secret key: one per installation, even when its processes start together."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

from fnhub.config import Settings
from fnhub.secret_box import SecretBox, resolve_secret_key

# Each process waits for the start file, so that all of them resolve the key at once.
_RESOLVE = """
import os, sys, time
from fnhub.config import Settings
from fnhub.secret_box import resolve_secret_key
data_dir, start = sys.argv[1:]
while not os.path.exists(start):
    time.sleep(0.001)
print(resolve_secret_key(Settings(project_dir=data_dir, data_dir=data_dir)))
"""


def test_processes_starting_together_share_one_key(tmp_path: Path) -> None:
    # separate interpreters, not fork: the test process may hold other tests' threads
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    for attempt in range(3):
        data_dir = tmp_path / f"data{attempt}"
        start = tmp_path / f"start{attempt}"
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", _RESOLVE, str(data_dir), str(start)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
            for _ in range(8)
        ]
        time.sleep(1.5)  # their imports done, every one polling
        start.touch()
        outs = [p.communicate(timeout=60) for p in procs]
        assert all(p.returncode == 0 for p in procs), [err for _out, err in outs]
        keys = {out.strip() for out, _err in outs}
        assert len(keys) == 1, keys
        path = data_dir / "secret_key"
        assert path.read_text().strip() == keys.pop()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert [p.name for p in data_dir.iterdir()] == ["secret_key"], "a temporary file was left"


def test_a_stored_key_is_reused_and_an_explicit_one_wins(tmp_path: Path) -> None:
    settings = Settings(project_dir=tmp_path, data_dir=tmp_path)
    first = resolve_secret_key(settings)
    assert resolve_secret_key(settings) == first
    explicit = settings.model_copy(update={"secret_key": "configured"})
    assert resolve_secret_key(explicit) == "configured"
    sealed = SecretBox(first).encrypt("pw")
    assert SecretBox(resolve_secret_key(settings)).decrypt(sealed) == "pw"
