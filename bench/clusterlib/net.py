"""Network namespaces on one bridge: one namespace per test host, 10.x addresses that exist
only inside them. The bridge itself lives in a namespace of its own, so the machine's own
namespace gets no address and no route: all traffic stays inside the test hosts."""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
from dataclasses import dataclass, field

from bench.clusterlib.linkemu import LinkEmulator

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
    #: host → its link emulator while `netem` is on without the kernel's netem
    emulators: dict[str, LinkEmulator] = field(default_factory=dict, init=False, repr=False)

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

    def outer(self, host: str) -> str:
        """The host's veth end in the switch namespace (eth0's peer), a port of br0."""
        peer = json.loads(ip("-n", self.ns(host), "-j", "link", "show", "eth0").stdout)[0]
        links = json.loads(ip("-n", self.switch, "-j", "link", "show").stdout)
        return str(next(x["ifname"] for x in links if x["ifindex"] == peer["link_index"]))

    def netem(self, host: str, delay_ms: int, loss_pct: float) -> str:
        """`tc netem` delay and loss on the host's eth0 (its egress). Where the kernel has no
        netem (`sch_netem`, as on this test machine), the same done to the frames eth0 sends by
        a relay in the switch namespace (`linkemu`). Returns what was applied."""
        self.clear_netem(host)
        tc = ["ip", "netns", "exec", self.ns(host), "tc", "qdisc", "replace", "dev", "eth0", "root"]
        netem = [*tc, "netem", "delay", f"{delay_ms}ms", "loss", f"{loss_pct}%"]
        if subprocess.run(netem, capture_output=True).returncode == 0:
            return f"tc netem delay {delay_ms}ms loss {loss_pct}%"
        emulator = LinkEmulator(self.switch, self.ns(host), self.outer(host), delay_ms, loss_pct)
        emulator.start()
        self.emulators[host] = emulator
        return (
            f"no netem in this kernel: userspace link emulator, delay {delay_ms}ms loss "
            f"{loss_pct}% on the frames eth0 sends"
        )

    def clear_netem(self, host: str) -> dict[str, int]:
        """Undo `netem`; returns the link emulator's counts of frames (empty for tc netem)."""
        emulator = self.emulators.pop(host, None)
        if emulator is not None:
            return emulator.stop()
        subprocess.run(
            ["ip", "netns", "exec", self.ns(host), "tc", "qdisc", "del", "dev", "eth0", "root"],
            check=False,
            capture_output=True,
        )
        return {}

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
