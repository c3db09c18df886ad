"""`custos envoy`, the Envoy container's entrypoint: it becomes Envoy (exec, no Python
left in between) with the given bootstrap, and passes extra arguments through."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from custos.envoy_config import ENVOY_FIXED_ARGS, EnvoySettings, render_bootstrap
from custos.net import free_ports, wait_for_port
from tests.processes import custos, run


def test_a_valid_bootstrap_validates(tmp_path: Path) -> None:
    bootstrap = tmp_path / "envoy.yaml"
    bootstrap.write_text(render_bootstrap(EnvoySettings()))
    result = run("envoy", "--config", bootstrap, "--", "--mode", "validate")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "OK" in result.stdout + result.stderr


def test_a_broken_bootstrap_does_not(tmp_path: Path) -> None:
    bootstrap = tmp_path / "envoy.yaml"
    bootstrap.write_text(render_bootstrap(EnvoySettings()).replace("port_value", "port_valu"))
    result = run("envoy", "--config", bootstrap, "--", "--mode", "validate")
    assert result.returncode != 0
    assert "port_valu" in result.stdout + result.stderr  # Envoy's own word on it


def test_a_missing_bootstrap_is_a_clear_error(tmp_path: Path) -> None:
    result = run("envoy", "--config", tmp_path / "nowhere.yaml")
    assert result.returncode == 1
    assert result.stderr.strip() == f"error: {tmp_path / 'nowhere.yaml'}: no such file"


def running(pid: int) -> tuple[str, list[str]]:
    """The program a process runs, and its arguments after its name."""
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[1:-1]  # ends with a NUL
    return os.readlink(f"/proc/{pid}/exe"), [a.decode() for a in argv]


def catches(pid: int, signum: int) -> bool:
    """Whether a process has a handler installed for a signal (its SigCgt mask)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) >> (signum - 1) & 1)
    return False


async def until_catches(pid: int, signum: int) -> bool:
    # Envoy listens on its admin port before its main loop installs the SIGTERM
    # handler; a signal sent in between would kill it with the default action.
    for _ in range(600):
        if catches(pid, signum):
            return True
        await asyncio.sleep(0.05)
    return False


@pytest.mark.skipif(not Path("/proc/self/exe").exists(), reason="needs Linux /proc")
async def test_envoy_takes_the_process_place_and_gets_its_signals(tmp_path: Path) -> None:
    listen, admin = free_ports(2)
    bootstrap = tmp_path / "envoy.yaml"
    bootstrap.write_text(render_bootstrap(EnvoySettings(listen_port=listen, admin_port=admin)))
    process = await asyncio.create_subprocess_exec(
        *custos("envoy", "--config", bootstrap, "--", "--log-level", "warn"),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        await asyncio.wait_for(wait_for_port("127.0.0.1", admin), 30)
        # The process we started is Envoy itself, not a Python parent of it.
        program, argv = running(process.pid)
        assert Path(program).name == "envoy"
        passed = ["--config-path", str(bootstrap), *ENVOY_FIXED_ARGS, "--log-level", "warn"]
        assert argv == passed
        assert await until_catches(process.pid, signal.SIGTERM)
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 20) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
