"""A worker child's processes: the child and everything its tasks started, read from /proc.

Each child leads its own session (`os.setsid()` at start), so whatever a task starts
(`subprocess`, `multiprocessing`, `os.fork`, and their children) is in the child's session and,
unless it moved, in its process group. The supervisor can then:

- kill a task's processes with the child (`kill_tree`): the descendants are listed while the
  tree is whole (one that left the session with `setsid()` is still the child's descendant),
  then the group is killed at once (`killpg`, which a concurrent `fork` cannot escape), then
  whatever is left in the session (a process that only changed its group, or an orphan whose
  parent died first);
- measure the memory a task holds (`resident_bytes`): the child's resident set plus its
  descendants'.

Signals go through pidfds opened while the process is known to be ours, so a pid reused by an
unrelated process in between is never signalled.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
_KILL_ROUNDS = 20  # session sweeps: each catches what forked during the last one


def _stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name: [state, ppid, pgrp, session, ...]."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].decode().split()
    except (OSError, IndexError):
        return None


def _children(pid: int) -> list[int]:
    """Direct children of `pid`, from each of its threads' children file."""
    found: list[int] = []
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for tid in threads:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as f:
                found.extend(int(c) for c in f.read().split())
        except OSError:
            continue
    return found


def descendants(pid: int) -> list[tuple[int, int]]:
    """Every (descendant, its parent) of `pid`, parents before their children."""
    found: list[tuple[int, int]] = []
    parents = [pid]
    while parents:
        parent = parents.pop()
        for child in _children(parent):
            found.append((child, parent))
            parents.append(child)
    return found


def resident_bytes(pid: int) -> int:
    """Resident memory of `pid` and its descendants (0 once it is gone). Pages shared between
    them (a fork's copy-on-write pages) count once per process."""
    total = 0
    for p in [pid, *(d for d, _ in descendants(pid))]:
        try:
            with open(f"/proc/{p}/statm", "rb") as f:
                total += int(f.read().split()[1]) * PAGE_SIZE
        except (OSError, IndexError, ValueError):
            continue
    return total


def _session_members(session: int) -> list[int]:
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat(int(entry))
            if fields is not None and int(fields[3]) == session and fields[0] not in "ZX":
                members.append(int(entry))
    return members


def _kill_in_session(pid: int, session: int) -> None:
    """SIGKILL `pid` if, once its pidfd is open, it is still in `session`: the pidfd pins the
    process, so a pid reused meanwhile by a process elsewhere is never signalled."""
    try:
        fd = os.pidfd_open(pid)
    except OSError:
        return  # gone already
    try:
        fields = _stat(pid)
        if fields is not None and int(fields[3]) == session:
            with contextlib.suppress(OSError):
                signal.pidfd_send_signal(fd, signal.SIGKILL)
    finally:
        os.close(fd)


def kill_tree(leader: int) -> None:
    """SIGKILL the session leader `leader` (a worker child) and every process it started."""
    tree = descendants(leader)  # before any kill: orphans lose the link to their ancestors
    fds: list[int] = []
    for pid, parent in tree:  # pin them while they are known to be ours
        try:
            fd = os.pidfd_open(pid)
        except OSError:
            continue
        fields = _stat(pid)
        if fields is not None and int(fields[1]) == parent:
            fds.append(fd)
        else:
            os.close(fd)
    with contextlib.suppress(OSError):
        os.killpg(leader, signal.SIGKILL)
    for fd in fds:
        with contextlib.suppress(OSError):
            signal.pidfd_send_signal(fd, signal.SIGKILL)
        os.close(fd)
    kill_session(leader)


def kill_session(session: int, *, spare: int = 0) -> set[int]:
    """SIGKILL every live process of `session` but `spare`; returns the pids signalled."""
    killed: set[int] = set()
    for _ in range(_KILL_ROUNDS):
        members = [p for p in _session_members(session) if p != spare]
        if not members:
            break
        for pid in members:
            _kill_in_session(pid, session)
        killed.update(members)
        time.sleep(0.005)  # let them die (or show what they forked meanwhile)
    return killed
