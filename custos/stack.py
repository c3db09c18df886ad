"""The local stack behind `make run` and the integration tests: a development OIDC
issuer, the demo MCP server, ext_authz and Envoy, all on loopback, each a child process
whose output is shown with a prefix. Stopping the stack stops every child it started."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from custos.envoy_config import EnvoySettings, envoy_binary, render_bootstrap
from custos.errors import StackError
from custos.net import free_port, wait_for_port

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEMO_SERVER = PROJECT_ROOT / "examples" / "demo_mcp_server.py"
EXAMPLE_POLICY = PROJECT_ROOT / "examples" / "policy.yaml"
AUDIENCE = "custos-local"
UPSTREAM_TOKEN_ENV = "CUSTOS_UPSTREAM_TOKEN"
START_TIMEOUT = 30.0


@dataclass(frozen=True)
class Ports:
    envoy: int = 8080
    envoy_admin: int = 9901
    authz: int = 9001
    authz_metrics: int = 9002
    issuer: int = 9100
    mcp: int = 9101

    @classmethod
    def free(cls) -> Ports:
        return cls(*(free_port() for _ in range(6)))


@dataclass
class Child:
    name: str
    process: asyncio.subprocess.Process
    pump: asyncio.Task[None]


@dataclass
class LocalStack:
    run_dir: Path
    ports: Ports = field(default_factory=Ports)
    policy: Path = EXAMPLE_POLICY
    quiet: bool = False  # tests keep child output out of their own unless it fails
    children: dict[str, Child] = field(default_factory=dict)
    output: list[str] = field(default_factory=list)
    upstream_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))

    @property
    def issuer_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.issuer}"

    @property
    def mcp_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.envoy}/mcp"

    @property
    def header_log(self) -> Path:
        return self.run_dir / "upstream-headers.jsonl"

    async def start(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        python = sys.executable
        await self._spawn(
            "issuer",
            [python, "-m", "custos", "dev-issuer", "--port", str(self.ports.issuer)],
            port=self.ports.issuer,
        )
        await self._spawn(
            "mcp",
            [python, str(DEMO_SERVER), "--port", str(self.ports.mcp)],
            port=self.ports.mcp,
            env={"DEMO_MCP_HEADER_LOG": str(self.header_log)},
        )
        await self.start_authz()
        bootstrap = self.run_dir / "envoy.yaml"
        bootstrap.write_text(render_bootstrap(self.envoy_settings()))
        await self._spawn(
            "envoy",
            [
                envoy_binary(),
                "-c",
                str(bootstrap),
                "--log-level",
                "warn",
                "--disable-hot-restart",
                # Access log lines reach the terminal within a second, not ten.
                "--file-flush-interval-msec",
                "500",
            ],
            port=self.ports.envoy,
        )

    async def start_authz(self) -> None:
        config = self.run_dir / "extauthz.yaml"
        config.write_text(yaml.safe_dump(self.authz_config(), sort_keys=False))
        await self._spawn(
            "ext_authz",
            [sys.executable, "-m", "custos", "extauthz", "--config", str(config)],
            port=self.ports.authz,
            env={UPSTREAM_TOKEN_ENV: self.upstream_token},
        )

    def authz_config(self) -> dict[str, object]:
        return {
            "listen": f"127.0.0.1:{self.ports.authz}",
            "metrics_listen": f"127.0.0.1:{self.ports.authz_metrics}",
            "policy": str(self.policy),
            "issuers": [{"issuer": self.issuer_url, "audience": AUDIENCE}],
            "resource_metadata_url": (
                f"http://127.0.0.1:{self.ports.envoy}/.well-known/oauth-protected-resource"
            ),
            "upstream_credential": {"env": UPSTREAM_TOKEN_ENV},
        }

    def envoy_settings(self) -> EnvoySettings:
        return EnvoySettings(
            listen_port=self.ports.envoy,
            admin_port=self.ports.envoy_admin,
            authz_port=self.ports.authz,
            upstream_port=self.ports.mcp,
            public_url=f"http://127.0.0.1:{self.ports.envoy}",
            authorization_servers=(self.issuer_url,),
        )

    async def _spawn(
        self, name: str, argv: list[str], port: int, env: dict[str, str] | None = None
    ) -> None:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
            start_new_session=True,  # Ctrl-C reaches the stack, which then stops each child
        )
        assert process.stdout is not None
        pump = asyncio.create_task(self._pump(name, process.stdout))
        self.children[name] = Child(name, process, pump)
        waiting = asyncio.create_task(
            asyncio.wait_for(wait_for_port("127.0.0.1", port), START_TIMEOUT)
        )
        exited = asyncio.create_task(process.wait())
        done, _ = await asyncio.wait({waiting, exited}, return_when=asyncio.FIRST_COMPLETED)
        if exited in done:
            waiting.cancel()
            raise StackError(f"{name} exited with {process.returncode} before it was ready")
        exited.cancel()
        try:
            waiting.result()
        except TimeoutError as exc:
            raise StackError(f"{name} did not listen on port {port} in {START_TIMEOUT}s") from exc

    async def _pump(self, name: str, stream: asyncio.StreamReader) -> None:
        width = 9
        async for raw in stream:
            line = f"{name:<{width}}| {raw.decode(errors='replace').rstrip()}"
            self.output.append(line)
            if not self.quiet:
                print(line, flush=True)

    async def stop_child(self, name: str) -> None:
        child = self.children.pop(name)
        if child.process.returncode is None:
            child.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(child.process.wait(), 10)
            except TimeoutError:
                child.process.kill()
                await child.process.wait()
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(child.pump, 5)

    async def stop(self) -> None:
        """Last started, first stopped; whatever an interruption leaves running is killed."""
        try:
            for name in reversed(list(self.children)):
                await self.stop_child(name)
        finally:
            for child in self.children.values():
                with contextlib.suppress(ProcessLookupError):
                    child.process.kill()
            self.children.clear()

    async def wait_any_exit(self) -> str:
        """Return the name of the first child that exits on its own."""
        waits = {asyncio.create_task(c.process.wait()): name for name, c in self.children.items()}
        done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        return waits[done.pop()]
