"""A Node host process (host.js) and the framed pipes Python drives it through.

Two pipes besides stdout and stderr (which user code and Node's fatal errors write to, so they
go to a log file in the process's folder): Python → Node and Node → Python, each frame a 4-byte
big-endian length and UTF-8 JSON, written in one `write`. Bytes travel as
`{"$fnhub_bytes": "<base64>"}` both ways (a Buffer in JavaScript), as in Python's results.

The process runs in a session (and process group) of its own, holding the processes its
functions start; its end is seen on a pidfd polled beside the answer pipe, since such a process
may hold the pipe's write end (no end of file), and the group is killed before it is reaped.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from fnhub.node.locate import NodeBinary
from fnhub.parent_death import parent_death_hook
from fnhub.tasks import Task

HOST_JS = Path(__file__).with_name("host.js")
BYTES_MARKER = "$fnhub_bytes"
_READ_SIZE = 1 << 16
_FOLDER_PREFIX = "fnhub-node-"
#: the environment variable naming a Node process's folder, inherited by what it starts
_MARKER = "FNHUB_NODE_HOST"


def _sweep() -> None:
    """Remove the folders of processes whose owner died without cleaning up (a worker child
    killed with SIGKILL runs no `finally`); the owner's pid is in the folder's name."""
    base = Path(tempfile.gettempdir())
    for folder in base.glob(f"{_FOLDER_PREFIX}*-*"):
        pid = folder.name[len(_FOLDER_PREFIX) :].partition("-")[0]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            _end_left(folder)
            shutil.rmtree(folder, ignore_errors=True)
        except PermissionError:
            pass  # another user's live process


def _end_left(folder: Path) -> None:
    """SIGKILL what the Node process of a dead owner left in its session (its functions'
    processes: the owner that would have killed its group is gone). A process counts when its
    session is the Node process's pid and its environment carries the folder's name, since
    that pid may be another process's by now."""
    try:
        session = (folder / "pid").read_text()
    except OSError:
        return
    marker = f"{_MARKER}={folder.name}\0".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "stat").read_text().rpartition(")")[2].split()[3] != session:
                continue
            if marker in (entry / "environ").read_bytes():
                os.kill(int(entry.name), signal.SIGKILL)
        except (OSError, IndexError):
            continue  # gone meanwhile, or another user's


class Gone(Exception):
    """The process's answer pipe closed: it ended."""


def wire_default(value: Any) -> Any:
    """Bytes travel as the marker object, both ways (a Buffer in JavaScript)."""
    if isinstance(value, bytes | bytearray | memoryview):
        return {BYTES_MARKER: base64.b64encode(value).decode()}
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def from_wire(value: Any) -> Any:
    if isinstance(value, dict) and len(value) == 1 and BYTES_MARKER in value:
        return base64.b64decode(value[BYTES_MARKER])
    return value


def to_json(obj: Any) -> bytes:
    try:
        return orjson.dumps(obj, default=wire_default)
    except TypeError:  # keys that are not strings (msgpack allows them)
        return orjson.dumps(obj, default=wire_default, option=orjson.OPT_NON_STR_KEYS)


def encode_frame(obj: Any) -> bytes:
    payload = to_json(obj)
    return len(payload).to_bytes(4, "big") + payload


#: one task in a run frame: (layout, script, function name, kwargs, context, expires_at)
RunEntry = tuple[int, str, str, Any, tuple[Any, ...], float | None]


def run_entry(task: Task, layout: int, script: str, name: str) -> RunEntry:
    """`task` as one entry of a run frame, the context an array in host.js's CTX_* order
    (task id, function, origin, origin id, trigger time, attempt, queue, meta): no key names
    to write and parse for every task."""
    ctx = (
        task.id,
        task.function,
        task.origin,
        task.origin_id,
        task.trigger_time,
        task.attempt,
        task.queue,
        task.meta or None,
    )
    return (layout, script, name, task.kwargs, ctx, task.expires_at)


def run_frame(entries: list[RunEntry]) -> bytes:
    """The frame running `entries` in order, `{"t": "run", "r": [entry, ...]}`: the tasks of a
    batch sent ahead go in one frame, encoded once (one JSON.parse in Node for all of them).
    Raises TypeError when an entry's kwargs do not encode (a type JSON has no form for)."""
    return encode_frame({"t": "run", "r": entries})


class HostProcess:
    """One Node host: its pipes, its folder, and what it was already sent."""

    def __init__(
        self,
        node: NodeBinary,
        mode: str,
        *,
        heap_mb: int | None = None,
        result_max_bytes: int = 1_000_000,
        log_max_bytes: int = 64_000,
        modules_dir: Path | None = None,
    ) -> None:
        _sweep()
        self.root = Path(tempfile.mkdtemp(prefix=f"{_FOLDER_PREFIX}{os.getpid()}-"))
        self.log_path = self.root / "node.log"
        to_node_r, to_node_w = os.pipe()
        from_node_r, from_node_w = os.pipe()
        config = {
            "root": str(self.root / "run"),
            "inFd": to_node_r,
            "outFd": from_node_w,
            "resultMax": result_max_bytes,
            "logMax": log_max_bytes,
            "modules": str(modules_dir) if modules_dir is not None else None,
        }
        try:
            with open(self.log_path, "ab") as log_file:
                self.proc = subprocess.Popen(
                    [
                        node.path,
                        *([f"--max-old-space-size={heap_mb}"] if heap_mb else []),
                        str(HOST_JS),
                        mode,
                        json.dumps(config),
                    ],
                    stdin=subprocess.DEVNULL,
                    env={**os.environ, _MARKER: self.root.name},
                    stdout=log_file,
                    stderr=log_file,
                    pass_fds=(to_node_r, from_node_w),
                    preexec_fn=parent_death_hook(signal.SIGKILL),
                    start_new_session=True,  # its group: the processes its functions start
                )
        finally:
            os.close(to_node_r)
            os.close(from_node_w)
        (self.root / "pid").write_text(str(self.proc.pid))  # its session's id, for `_sweep`
        self.wfd = to_node_w
        self.rfd = from_node_r
        # readable once the process ended, whoever else holds its pipes' ends
        self.pidfd = os.pidfd_open(self.proc.pid)
        os.set_blocking(self.wfd, False)
        self.reader = select.poll()
        self.reader.register(self.rfd, select.POLLIN)
        self.reader.register(self.pidfd, select.POLLIN)
        self.writer = select.poll()
        self.writer.register(self.wfd, select.POLLOUT)
        self.writer.register(self.pidfd, select.POLLIN)
        self.buf = bytearray()
        self.sent: set[tuple[str, str]] = set()  # script versions whose code it has
        self.layouts: dict[frozenset[tuple[str, str]], int] = {}
        self.killed = False  # by us: its end is no news
        self.exit_code: int | None = None  # what process.exit() said, when it did

    def write(self, data: bytes, deadline: float) -> bool:
        """Write all of `data` before `deadline`; False when the deadline passed first."""
        view = memoryview(data)
        done = 0
        while True:
            try:
                done += os.write(self.wfd, view[done:])
            except BlockingIOError:
                pass  # the pipe is full: Node reads it once it gets to it
            except OSError as exc:  # BrokenPipeError: it ended
                raise Gone from exc
            if done >= len(data):
                return True
            ready = self.writer.poll(ms_left(deadline))
            if not ready:
                if time.time() >= deadline:
                    return False
            elif len(ready) == 1 and ready[0][0] == self.pidfd:
                raise Gone  # the pipe is full and its reader ended (a grandchild holds it)

    def read(self, deadline: float) -> Any:
        """The next frame, or None once `deadline` passed; raises Gone when the process ended."""
        buf = self.buf
        while True:
            if len(buf) >= 4:
                size = int.from_bytes(buf[:4], "big")
                if len(buf) >= size + 4:
                    frame = orjson.loads(buf[4 : size + 4])
                    del buf[: size + 4]
                    return frame
            ready = self.reader.poll(ms_left(deadline))
            if not ready:
                if time.time() >= deadline:
                    return None
                continue
            if len(ready) == 1 and ready[0][0] == self.pidfd:
                # it ended and wrote nothing more (poll names the pipe too when it has bytes):
                # the pipe's EOF may never come, a process it started may hold its write end
                raise Gone
            chunk = os.read(self.rfd, _READ_SIZE)
            if not chunk:
                raise Gone
            if not buf and len(chunk) >= 4 and int.from_bytes(chunk[:4], "big") == len(chunk) - 4:
                return orjson.loads(memoryview(chunk)[4:])  # the usual case: one whole frame
            buf += chunk

    def ended(self) -> bool:
        """Whether the process ended, without reaping it (its Popen does, in `close`): asked
        before every task, and one waitid call costs a fifth of `Popen.poll` (a lock, waitpid)."""
        try:
            found = os.waitid(os.P_PID, self.proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:  # reaped already
            return True
        return found is not None

    def log_tail(self, size: int = 4000) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - size))
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def wait_ended(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for the process to end, without reaping it."""
        return bool(select.select([self.pidfd], [], [], timeout)[0])

    def exit_status(self) -> int:
        """How the ended (not yet reaped) process ended, as `Popen.returncode` says it: the
        exit code, or minus the signal that killed it."""
        info = os.waitid(os.P_PIDFD, self.pidfd, os.WEXITED | os.WNOWAIT)
        assert info is not None  # it ended: waitid does not block
        return info.si_status if info.si_code == os.CLD_EXITED else -info.si_status

    def kill(self) -> None:
        """SIGKILL the process and every process of its group (those its functions started
        and did not detach), alive or not: a process group outlives its leader, and its id is
        not reused while the leader is unreaped, which `close` does last."""
        self.killed = True
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)

    def close(self) -> None:
        """End the process (closing its input ends it; a busy one is killed), the processes
        left in its group, and its folder."""
        with contextlib.suppress(OSError):
            os.close(self.wfd)
        if self.proc.returncode is None:
            ended = self.wait_ended(0.5)
            if not ended:
                self.killed = True
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)  # its grandchildren, before reaping
            self.proc.wait()
        with contextlib.suppress(OSError):
            os.close(self.rfd)
        with contextlib.suppress(OSError):
            os.close(self.pidfd)
        shutil.rmtree(self.root, ignore_errors=True)


def ms_left(deadline: float) -> int:
    """Milliseconds to `deadline` for poll(), rounded up (0 once it passed)."""
    return max(0, int((deadline - time.time()) * 1000) + 1)
