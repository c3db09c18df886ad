"""Closed-loop maximum throughput with wrk (Debian's `wrk` package), and its output parsed.

wrk counts 3xx as success and prints "Non-2xx or 3xx responses" otherwise; any such
response, socket error or timeout fails the run, because a benchmark of 401s or 503s
measures the error path, not the proxy."""

from __future__ import annotations

import asyncio
import re
import resource
import shutil
from dataclasses import dataclass
from pathlib import Path

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}
_PERCENTILE = re.compile(r"^\s*(\d+(?:\.\d+)?)%\s+([\d.]+)(us|ms|s|m)\s*$", re.MULTILINE)
_RPS = re.compile(r"^Requests/sec:\s+([\d.]+)", re.MULTILINE)
_TOTAL = re.compile(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m)", re.MULTILINE)
_NON_2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
_SOCKET_ERRORS = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")


class WrkFailed(RuntimeError):
    pass


@dataclass(frozen=True)
class WrkResult:
    requests: int
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    cpu_seconds: float  # wrk's own CPU, to see what the load generator took of 2 cores
    output: str


def wrk_binary() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise FileNotFoundError("wrk is not installed (apt-get install wrk)")
    return found


async def run_wrk(url: str, script: Path, connections: int, seconds: int) -> WrkResult:
    argv = [
        wrk_binary(),
        "-t1",  # one thread: two cores are shared with Envoy, the upstream and ext_authz
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "5s",
        "--latency",
        "-s",
        str(script),
        url,
    ]
    before = _children_cpu()
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        raw, _ = await asyncio.wait_for(process.communicate(), seconds + 30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    output = raw.decode(errors="replace")
    if process.returncode != 0:
        raise WrkFailed(f"wrk exited with {process.returncode}:\n{output}")
    return parse(output, _children_cpu() - before)


def _children_cpu() -> float:
    """CPU of reaped children; between two readings only wrk is reaped (the services
    outlive the measurement), so the difference is wrk's."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def parse(output: str, cpu_seconds: float = 0.0) -> WrkResult:
    non_2xx = _NON_2XX.search(output)
    if non_2xx:
        raise WrkFailed(f"{non_2xx.group(1)} responses were not 2xx/3xx:\n{output}")
    errors = _SOCKET_ERRORS.search(output)
    if errors and any(int(n) for n in errors.groups()):
        raise WrkFailed(f"socket errors during the run:\n{output}")
    rps, total = _RPS.search(output), _TOTAL.search(output)
    percentiles = {float(p): float(v) * _UNITS[u] for p, v, u in _PERCENTILE.findall(output)}
    if rps is None or total is None or 50.0 not in percentiles or 99.0 not in percentiles:
        raise WrkFailed(f"unexpected wrk output:\n{output}")
    if int(total.group(1)) == 0:
        raise WrkFailed(f"wrk completed no request:\n{output}")
    return WrkResult(
        requests=int(total.group(1)),
        requests_per_second=float(rps.group(1)),
        p50_ms=percentiles[50.0],
        p99_ms=percentiles[99.0],
        cpu_seconds=cpu_seconds,
        output=output,
    )
