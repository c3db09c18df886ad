"""The benchmark's child processes, started by custos.children.Supervisor with their
output in files, and what they cost: CPU time read from /proc (and the script's own)."""

from __future__ import annotations

import os
import resource
from pathlib import Path

from custos.children import Child, Supervisor

# ext_authz drains gRPC for up to 5 s on SIGTERM; under --profile cProfile then writes.
STOP_TIMEOUT = 15.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def supervisor(log_dir: Path) -> Supervisor:
    # Files, not relayed lines: relaying Envoy's access log at thousands of requests a
    # second would cost this process CPU that the measured ones need on two cores.
    return Supervisor(log_dir=log_dir, stop_timeout=STOP_TIMEOUT)


def cpu_seconds(children: Supervisor) -> dict[str, float]:
    """User + system CPU so far of every thread of every child."""
    return {
        name: _cpu_seconds(Path(f"/proc/{child.process.pid}/stat"))
        for name, child in children.children.items()
    }


def own_cpu_seconds() -> float:
    """User + system CPU so far of this process, every thread of it."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main_thread_cpu_seconds(child: Child) -> float:
    """The main thread alone: for a Python service, the one that holds the GIL."""
    pid = child.process.pid
    return _cpu_seconds(Path(f"/proc/{pid}/task/{pid}/stat"))


def _cpu_seconds(stat: Path) -> float:
    # Fields after the parenthesised command name; utime and stime are the 14th and 15th.
    fields = stat.read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def tails(children: Supervisor, lines: int = 15) -> str:
    return "\n".join(
        f"--- {name} ({child.log}) ---\n{_tail(child, lines)}"
        for name, child in children.children.items()
    )


def _tail(child: Child, lines: int) -> str:
    if child.log is None:
        return ""
    try:
        text = child.log.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
