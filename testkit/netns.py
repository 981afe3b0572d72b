"""Hosts for multi-host tests: network namespaces the test makes, joined by veth pairs.

Every veth end is created inside a namespace made here (never in the machine's own), the
addresses are from the documentation ranges, and no namespace has a route out: traffic
stays between the test's hosts. `Lab` removes its namespaces and stops what it started.
Needs root and iproute2 (and iptables / tc for the link faults).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path


class LabError(RuntimeError):
    pass


@dataclass(frozen=True)
class Host:
    name: str
    netns: str
    address: str = ""
    device: str = ""  # its end of the link to the other host

    def cmd(self, argv: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", self.netns, *argv]


def available() -> str | None:
    """Why multi-host tests cannot run here, or None when they can."""
    if os.geteuid() != 0:
        return "needs root for network namespaces"
    for tool in ("ip", "iptables", "tc"):
        if subprocess.run(["sh", "-c", f"command -v {tool}"], capture_output=True,
                          check=False).returncode != 0:
            return f"{tool} is not installed (scripts/setup.sh installs it)"
    return None


@dataclass
class Lab:
    prefix: str = field(default_factory=lambda: "vw" + secrets.token_hex(3))
    hosts: list[Host] = field(default_factory=list)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    links: int = 0

    def run(self, host: Host, argv: Sequence[str], check: bool = True,
            timeout_s: float = 30) -> subprocess.CompletedProcess[str]:
        out = subprocess.run(host.cmd(argv), capture_output=True, text=True, check=False,
                             timeout=timeout_s)
        if check and out.returncode != 0:
            raise LabError(f"{' '.join(argv)} on {host.name}: {out.stderr.strip()}")
        return out

    def add_host(self, name: str) -> Host:
        netns = f"{self.prefix}-{name}"
        subprocess.run(["ip", "netns", "add", netns], check=True, timeout=10)
        host = Host(name, netns)
        self.hosts.append(host)
        self.run(host, ["ip", "link", "set", "lo", "up"])
        return host

    def link(self, a: Host, b: Host, a_address: str, b_address: str,
             prefix_len: int = 24) -> tuple[Host, Host]:
        """A veth pair between two hosts; returns them with their address and device."""
        self.links += 1
        dev_a, dev_b = f"{self.prefix}{self.links}a", f"{self.prefix}{self.links}b"
        # Made inside `a`, its peer end put straight into `b`: never in the machine's own.
        self.run(a, ["ip", "link", "add", dev_a, "type", "veth", "peer", "name", dev_b,
                     "netns", b.netns])
        for host, dev, address in ((a, dev_a, a_address), (b, dev_b, b_address)):
            self.run(host, ["ip", "addr", "add", f"{address}/{prefix_len}", "dev", dev])
            self.run(host, ["ip", "link", "set", dev, "up"])
        return (Host(a.name, a.netns, a_address, dev_a), Host(b.name, b.netns, b_address, dev_b))

    def start(self, host: Host, argv: Sequence[str], env: Mapping[str, str], log: Path,
              cwd: Path | None = None) -> subprocess.Popen[bytes]:
        """A long-running process on `host`, its output into `log`."""
        with log.open("ab") as out:
            proc = subprocess.Popen(host.cmd(argv), env=dict(env), cwd=cwd, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM,
             timeout_s: float = 10) -> None:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)

    def close(self) -> None:
        for proc in reversed(self.procs):
            self.stop(proc)
        self.procs.clear()
        for host in {h.netns: h for h in self.hosts}.values():
            # Whatever is still inside (a child that escaped its group) dies with it.
            pids = subprocess.run(["ip", "netns", "pids", host.netns], capture_output=True,
                                  text=True, check=False).stdout.split()
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), signal.SIGKILL)
            subprocess.run(["ip", "netns", "del", host.netns], check=False, timeout=10)
        self.hosts.clear()


@contextlib.contextmanager
def lab() -> Iterator[Lab]:
    made = Lab()
    try:
        yield made
    finally:
        made.close()
