"""`custos run` (what `make run` starts): ready banner, prefixed logs, clean Ctrl-C."""

from __future__ import annotations

import dataclasses
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from custos.net import free_ports
from custos.stack import Ports


def test_custos_run_serves_and_stops_every_child_on_ctrl_c(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "custos", "run", "--free-ports", "--run-dir", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("Ctrl-C stops everything"):
                break
        output = "".join(lines)
        assert "Custos is ready" in output, output
        for prefix in ("issuer   |", "mcp      |", "ext_authz|"):
            assert prefix in output
        mcp_url = re.search(r"^  MCP endpoint\s+(\S+)", output, re.MULTILINE)
        issuer = re.search(r"^  OIDC issuer\s+(\S+)", output, re.MULTILINE)
        assert mcp_url and issuer
        ask = ["token", "--sub", "alice", "--groups", "phi-readers", "--issuer", issuer.group(1)]
        token = subprocess.run(
            [sys.executable, "-m", "custos", *ask],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout.strip()
        response = httpx.post(
            mcp_url.group(1),
            json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
            headers={"authorization": f"Bearer {token}"},
        )
        # The demo server wants a session first (400), but the request got past the sidecar.
        assert response.status_code not in (401, 403, 503)
    finally:
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=30)
    assert process.returncode == 0
    assert "stopped every process of the stack" in rest
    # Nothing answers any more where the stack was.
    try:
        httpx.get(mcp_url.group(1), timeout=2)
    except httpx.ConnectError:
        pass
    else:
        raise AssertionError("something still listens after Ctrl-C")


def test_the_stack_gets_a_different_port_for_every_service() -> None:
    # The kernel may hand a port it just took back out at once: two services on one port
    # would make the stack start with one of them silently dead.
    for _ in range(20):
        ports = dataclasses.astuple(Ports.free())
        assert len(set(ports)) == len(ports)
    assert len(set(free_ports(200))) == 200
