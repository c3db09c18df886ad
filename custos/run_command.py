"""`custos run` / `make run`: the local stack in the foreground until Ctrl-C."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

from custos.stack import EXAMPLE_POLICY, LocalStack, Ports

BANNER = """
Custos is ready (development stack: not for production).
  MCP endpoint      {mcp_url}
  OIDC issuer       {issuer}   (development only, fresh key each start)
  ext_authz metrics http://127.0.0.1:{metrics}/metrics
  ext_proc metrics  http://127.0.0.1:{masking_metrics}/metrics
  Envoy admin       http://127.0.0.1:{admin}
  Audit spool       {spool}   (shipped to a Logging API emulator on :{logging})
Get a token and list the tools:
  TOKEN=$(.venv/bin/custos token --sub alice --groups phi-readers)
  curl -s {mcp_url} -H "Authorization: Bearer $TOKEN" \\
    -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \\
    -d '{{"jsonrpc":"2.0","id":1,"method":"tools/list"}}'
See what the audit trail holds, and check it:
  .venv/bin/custos audit replay --spool {spool} --public-key {public_key}
  .venv/bin/custos audit verify --spool {spool} --public-key {public_key} --live
Ctrl-C stops everything.
"""


def run_stack(run_dir: Path, policy: Path | None, free_ports: bool = False) -> int:
    ports = Ports.free() if free_ports else Ports()
    return asyncio.run(_run(LocalStack(run_dir, ports, policy or EXAMPLE_POLICY)))


async def _run(stack: LocalStack) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stack.start()
        print(
            BANNER.format(
                mcp_url=stack.mcp_url,
                issuer=stack.issuer_url,
                metrics=stack.ports.authz_metrics,
                masking_metrics=stack.ports.extproc_metrics,
                admin=stack.ports.envoy_admin,
                spool=stack.spool_dir,
                logging=stack.ports.logging,
                public_key=stack.audit_public_key,
            ),
            flush=True,
        )
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
