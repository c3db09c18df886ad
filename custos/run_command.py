"""`custos run` / `make run`: the local stack in the foreground until Ctrl-C."""

from __future__ import annotations

import asyncio
import json
import shlex
import signal
import sys
from pathlib import Path

from custos.stack import EXAMPLE_POLICY, LOCAL_PROJECT, LocalStack, Ports

READY = "Custos is ready (development stack: not for production)."
LAST_LINE = "Ctrl-C stops everything."
# What the banner's curl sends: MCP's first request, which opens a session.
INITIALIZE = json.dumps(
    {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "curl", "version": "1"},
        },
    },
    separators=(",", ":"),
)


def run_stack(run_dir: Path, policy: Path | None, free_ports: bool = False) -> int:
    ports = Ports.free() if free_ports else Ports()
    return asyncio.run(_run(LocalStack(run_dir, ports, policy or EXAMPLE_POLICY)))


def banner(stack: LocalStack, custos: str) -> str:
    """What `custos run` prints once every process is ready: where things are, and commands
    that work as printed from the folder it was started in (a test runs each of them)."""
    spool = shown(stack.spool_dir)
    public_key = shown(stack.audit_public_key)
    issuer = "" if stack.ports.issuer == Ports().issuer else f" --issuer {stack.issuer_url}"
    return f"""{READY}
  MCP endpoint      {stack.mcp_url}
  OIDC issuer       {stack.issuer_url}   (development only, fresh key each start)
  ext_authz metrics http://127.0.0.1:{stack.ports.authz_metrics}/metrics
  ext_proc metrics  http://127.0.0.1:{stack.ports.extproc_metrics}/metrics
  Envoy admin       http://127.0.0.1:{stack.ports.envoy_admin}
  Audit spool       {spool}   (shipped to a Logging API emulator on :{stack.ports.logging})
Get a token and open an MCP session (any MCP client: this URL and this header):
  TOKEN=$({custos} token --sub alice --groups phi-readers{issuer})
  curl -si {stack.mcp_url} -H "Authorization: Bearer $TOKEN" \\
    -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \\
    -d '{INITIALIZE}'
See what the audit trail holds, and check it, in the spool and in the emulator:
  {custos} audit replay --spool {spool} --public-key {public_key}
  {custos} audit verify --spool {spool} --public-key {public_key} --live
  {custos} audit verify --project {LOCAL_PROJECT} --endpoint 127.0.0.1:{stack.ports.logging} \\
    --public-key {public_key} --live
{LAST_LINE}"""


def shown(path: Path) -> str:
    """A path as the user can type it where they started: relative when it lies below the
    working directory, absolute otherwise; quoted for the shell."""
    try:
        return shlex.quote(str(path.relative_to(Path.cwd())))
    except ValueError:
        return shlex.quote(str(path))


def custos_command() -> str:
    """The `custos` the user started, as a path (`.venv/bin/custos` when `make run` starts
    it), so the banner's commands work in a terminal where it is not on PATH; or this
    interpreter with `-m custos`."""
    started = Path(sys.argv[0])
    if started.name != "custos":
        return f"{shlex.quote(sys.executable)} -m custos"
    return shown(started.absolute())


async def _run(stack: LocalStack) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stack.start()
        print(f"\n{banner(stack, custos_command())}", flush=True)
        stopped = asyncio.create_task(stop.wait())
        exited = asyncio.create_task(stack.wait_any_exit())
        done, _ = await asyncio.wait({stopped, exited}, return_when=asyncio.FIRST_COMPLETED)
        if exited in done:
            print(f"{exited.result()} exited; stopping the stack", flush=True)
            return 1
        return 0
    finally:
        await stack.stop()
        print("stopped every process of the stack", flush=True)
