"""CPU of each process of fnhub's worker tree while it drains a Redis Streams backlog.

    python bench/subscribe_tree.py [--messages 20000] [--path direct] [--profile SECONDS]

bench/subscribe.py's fnhub run (`fnhub worker --processes 2`, window 500, records on, the
backlog published before the worker starts) reports the tree's CPU as one figure; this splits
it by process (supervisor, its children), read from /proc/<pid>/stat at the two moments that
figure is read, so a regression or a cut can be placed. `--profile` also runs
`py-spy record --subprocesses --gil -f raw` on the tree for that many seconds from the start of
the timed drain (py-spy on PATH), its samples written to --out's folder as tree_profile.txt.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import subscribe as sub  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str]:
    """The fields of /proc/<pid>/stat after the command's name (state first)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()


def tree(root: int) -> dict[int, tuple[str, float]]:
    """Every process under `root` (itself included): its command line's end, CPU seconds."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                children.setdefault(int(_stat(int(entry))[1]), []).append(int(entry))
            except OSError:  # gone meanwhile
                pass
    out: dict[int, tuple[str, float]] = {}
    todo = [root]
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        try:
            fields = _stat(pid)
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        out[pid] = (argv.strip()[-60:], (int(fields[11]) + int(fields[12])) / TICKS)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--path", choices=["queued", "direct"], default="direct")
    parser.add_argument("--profile", type=float, default=0.0, help="py-spy seconds (0: none)")
    parser.add_argument("--out", type=Path, default=Path("/tmp"))
    args = parser.parse_args()
    snaps: list[dict[int, tuple[str, float]]] = []
    tree_cpu = sub._cpu

    def cpu(pid: int) -> float:  # fnhub_rate reads each role's tree at the drain's two ends
        snaps.append(tree(pid))
        if len(snaps) == 1 and args.profile:
            profile = str(args.out / "tree_profile.txt")
            spy = ["py-spy", "record", "-p", str(pid), "--subprocesses", "--gil", "-f", "raw"]
            subprocess.Popen(
                [*spy, "-r", "250", "-d", str(args.profile), "-o", profile],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        return tree_cpu(pid)

    sub._cpu = cpu
    n = args.messages
    rate = sub.fnhub_rate("redis", n, None, records=True, backlog=True, path=args.path)
    print(f"{rate['msgs_per_s']:.0f} msgs/s, worker tree {rate['cpu_us_worker']:.1f} µs/msg")
    before, after = snaps[0], snaps[-1]
    for pid, (argv, seconds) in after.items():
        spent = seconds - before[pid][1] if pid in before else seconds
        print(f"{pid:>8} {spent / n * 1e6:7.2f} µs/msg  {argv}")


if __name__ == "__main__":
    main()
