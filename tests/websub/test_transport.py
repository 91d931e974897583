"""The guarded transport, exercised only inside a network namespace that has nothing but the
loopback (`netns_transport.py` under `unshare -n`): the checks connect to 127.0.0.1 and use
made-up names, and even if the transport were broken no packet could leave the machine."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parent / "netns_transport.py"
CHECKS = {
    "ok refused without the allow-list",
    "ok connects with the allow-list",
    "ok a name resolving to a private address is refused at connect time",
    "ok rebinding after the early check is refused at connect time",
    "ok one lookup, connected to the checked address; one bad answer refuses the name",
}


def can_unshare_network() -> bool:
    if os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("ip") is None:
        return False
    return subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0


@pytest.mark.skipif(not can_unshare_network(), reason="needs root and `unshare -n`")
def test_guarded_transport_in_a_loopback_only_namespace():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        ["unshare", "-n", sys.executable, str(SCRIPT)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert set(done.stdout.splitlines()) == CHECKS, done.stdout
