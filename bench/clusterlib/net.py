"""Network namespaces on one bridge: one namespace per test host, 10.x addresses that exist
only inside them. The bridge itself lives in a namespace of its own, so the machine's own
namespace gets no address and no route: all traffic stays inside the test hosts."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
from dataclasses import dataclass

CLONE_NEWNET = 0x40000000


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], check=check, capture_output=True, text=True)


def namespaces() -> list[str]:
    out = ip("netns", "list", check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


@dataclass
class Net:
    """`name` prefixes every namespace and link (one cluster per name at a time); `subnet` is
    the first three octets of the hosts' /24."""

    name: str
    subnet: str

    @property
    def switch(self) -> str:
        return f"{self.name}-sw"

    def ns(self, host: str) -> str:
        return f"{self.name}-{host}"

    def addr(self, octet: int) -> str:
        return f"{self.subnet}.{octet}"

    def exists(self) -> bool:
        return self.switch in namespaces()

    def create(self, hosts: dict[str, int]) -> None:
        """One namespace per host (lo up, eth0 with `<subnet>.<octet>/24`) on bridge br0."""
        ip("netns", "add", self.switch)
        ip("-n", self.switch, "link", "set", "lo", "up")
        ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
        ip("-n", self.switch, "link", "set", "br0", "up")
        for i, (host, octet) in enumerate(hosts.items()):
            ns = self.ns(host)
            ip("netns", "add", ns)
            ip("-n", ns, "link", "set", "lo", "up")
            outer, inner = f"{self.name}{i}a", f"{self.name}{i}b"
            ip("link", "add", outer, "type", "veth", "peer", "name", inner)
            ip("link", "set", outer, "netns", self.switch)
            ip("link", "set", inner, "netns", ns)
            ip("-n", ns, "link", "set", inner, "name", "eth0")
            ip("-n", ns, "addr", "add", f"{self.addr(octet)}/24", "dev", "eth0")
            ip("-n", ns, "link", "set", "eth0", "up")
            ip("-n", self.switch, "link", "set", outer, "master", "br0")
            ip("-n", self.switch, "link", "set", outer, "up")

    def enter(self, host: str) -> None:
        """Move the calling thread (call it before starting any other) into a host's namespace:
        threads and processes started afterwards are there too."""
        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(f"/var/run/netns/{self.ns(host)}", os.O_RDONLY)
        try:
            if libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns failed")
        finally:
            os.close(fd)

    # -- faults --------------------------------------------------------------------------
    def link(self, host: str, up: bool) -> None:
        ip("-n", self.ns(host), "link", "set", "eth0", "up" if up else "down")

    def netem(self, host: str, delay_ms: int, loss_pct: float) -> str:
        """`tc netem` delay and loss on the host's eth0 (its egress). Where the kernel has no
        netem (`sch_netem`, as on this test machine), a token bucket instead: 100 kbit/s with
        packets queued up to `delay_ms` and dropped past it, a congested link (delay and tail
        drops, not random loss). Returns what was applied."""
        tc = ["ip", "netns", "exec", self.ns(host), "tc", "qdisc", "replace", "dev", "eth0", "root"]
        netem = [*tc, "netem", "delay", f"{delay_ms}ms", "loss", f"{loss_pct}%"]
        if subprocess.run(netem, capture_output=True).returncode == 0:
            return f"tc netem delay {delay_ms}ms loss {loss_pct}%"
        tbf = [*tc, "tbf", "rate", "100kbit", "burst", "4kb", "latency", f"{delay_ms}ms"]
        subprocess.run(tbf, check=True, capture_output=True)
        return f"no netem in this kernel: tc tbf rate 100kbit latency {delay_ms}ms instead"

    def clear_netem(self, host: str) -> None:
        subprocess.run(
            ["ip", "netns", "exec", self.ns(host), "tc", "qdisc", "del", "dev", "eth0", "root"],
            check=False,
            capture_output=True,
        )

    # -- teardown ------------------------------------------------------------------------
    def teardown(self) -> list[str]:
        """SIGKILL every process left in this cluster's namespaces (by pid, as `ip netns pids`
        lists them), then delete the namespaces; returns the namespaces removed."""
        mine = [ns for ns in namespaces() if ns.startswith(f"{self.name}-")]
        me = os.getpid()
        for ns in mine:
            pids = ip("netns", "pids", ns, check=False).stdout.split()
            for pid in pids:
                if int(pid) != me:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(int(pid), signal.SIGKILL)
        for ns in mine:
            ip("netns", "del", ns, check=False)
        return mine
