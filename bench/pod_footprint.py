"""What each container of the chart's pod takes: the pod played on this machine (as
tests/chart/test_pod.py plays it), its start timed sidecar by sidecar, then each process's
resident memory at rest and after a load of tool calls, next to the requests and limits
the chart's values.yaml sets. Prints figures; asserts nothing.

    .venv/bin/python bench/pod_footprint.py [--calls 300]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import httpx
import yaml

# The pod player and the local servers are the tests' own.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from custos.cloud_logging.emulator import Emulator
from tests.chart.chart import CHART
from tests.chart.pod import until_probe_passes
from tests.chart.test_pod import playing, url, url_port
from tests.stack_fixture import INITIALIZE, MCP_HEADERS


def rss_mib(pid: int) -> float:
    """Resident memory of a process and its children (Envoy runs under its exec'd name)."""
    total = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            total += int(line.split()[1])
    return total / 1024


async def load(url: str, token: str, calls: int) -> float:
    headers = {**MCP_HEADERS, "authorization": f"Bearer {token}"}
    started = time.perf_counter()
    async with httpx.AsyncClient(headers=headers, timeout=30) as client:
        # The tests' initialize request: its id and client name mean nothing to what is
        # measured here.
        session = (await client.post(url, json=INITIALIZE)).headers.get("mcp-session-id", "")
        if session:
            client.headers["mcp-session-id"] = session
        # Numbered after the initialize request's id (1): no id recurs within the session.
        for number in range(2, calls + 2):
            call = {
                "jsonrpc": "2.0",
                "id": number,
                "method": "tools/call",
                "params": {"name": "get_patient_record", "arguments": {"patient_id": "pt-0001"}},
            }
            answer = await client.post(url, json=call)
            answer.raise_for_status()
    return time.perf_counter() - started


async def main(calls: int) -> None:
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    with tempfile.TemporaryDirectory() as scratch, Emulator() as emulator:
        started = time.perf_counter()
        async with playing(Path(scratch), emulator) as scene:
            up = time.perf_counter() - started
            await until_probe_passes({"httpGet": {"path": "/healthz", "port": url_port(scene.pod)}})
            serving = time.perf_counter() - started
            pids = {n: c.process.pid for n, c in scene.pod.supervisor.children.items()}
            idle = {n: rss_mib(pid) for n, pid in pids.items()}
            seconds = await load(url(scene.pod), scene.token("bench"), calls)
            busy = {n: rss_mib(pid) for n, pid in pids.items()}
    print(f"pod started (each startup probe passed) in {up:.2f} s; ready in {serving:.2f} s")
    print(f"{calls} tools/call, one at a time: {seconds:.2f} s ({calls / seconds:.0f} calls/s)")
    print(f"{'container':<11} {'RSS idle':>9} {'RSS after':>10}  values.yaml request / limit")
    for name in pids:
        spec = defaults["resources"].get(name) or defaults["mcpServer"]["resources"]
        request = spec.get("requests", {}).get("memory", "-")
        limit = spec.get("limits", {}).get("memory", "-")
        print(f"{name:<11} {idle[name]:>7.0f} M {busy[name]:>8.0f} M  {request} / {limit}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    asyncio.run(main(parser.parse_args().calls))
