"""Processes on the test hosts, started with `ip netns exec` (which execs: the pid we hold is
the program's own), and a supervisor that restarts the fnhub roles a second after they die,
as systemd's `Restart=always` with `RestartSec=1` would."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Proc:
    name: str
    ns: str
    argv: list[str]
    log: Path
    env: dict[str, str] | None = None
    supervised: bool = False  # restarted by the Supervisor after it dies
    popen: subprocess.Popen[bytes] | None = None
    held: bool = False  # stopped on purpose: not restarted until started again
    deaths: list[float] = field(default_factory=list)
    starts: list[float] = field(default_factory=list)

    def start(self) -> Proc:
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(
                ["ip", "netns", "exec", self.ns, *self.argv],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,
            )
        self.held = False
        self.starts.append(time.time())
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def signal(self, sig: int) -> None:
        if self.alive():
            assert self.popen is not None
            with contextlib.suppress(ProcessLookupError):
                self.popen.send_signal(sig)

    def kill9(self) -> None:
        """SIGKILL, as a crash: the Supervisor restarts a supervised role afterwards."""
        self.signal(signal.SIGKILL)

    def crash(self) -> None:
        """SIGKILL to the whole process group (PostgreSQL's backends die with their
        postmaster, as on a host crash), then wait for it; held: not restarted."""
        self.held = True
        if not self.alive():
            return
        assert self.popen is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait()

    def stop(self, timeout: float = 20) -> None:
        """SIGTERM and wait (SIGKILL past `timeout`); held: not restarted."""
        self.held = True
        if self.popen is None:
            return
        self.signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            self.popen.wait()


class Supervisor:
    """Restarts dead supervised processes after `delay` seconds; records each death."""

    def __init__(self, procs: list[Proc], delay: float = 1.0) -> None:
        self.procs = procs
        self.delay = delay
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name="supervisor", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        dead_since: dict[str, float] = {}
        while not self.stopped.wait(0.1):
            for proc in self.procs:
                if not proc.supervised or proc.held or proc.popen is None:
                    continue
                if proc.alive():
                    continue
                now = time.time()
                if proc.name not in dead_since:
                    dead_since[proc.name] = now
                    proc.deaths.append(now)
                elif now - dead_since[proc.name] >= self.delay:
                    del dead_since[proc.name]
                    proc.start()

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(2)
