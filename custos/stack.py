"""The local stack behind `make run` and the integration tests: a development OIDC
issuer, the demo MCP server, a Cloud Logging API emulator and the audit shipper, ext_authz,
ext_proc and Envoy, all on loopback, each a child process whose output is shown with a
prefix. Stopping the stack stops every child it started, last started first, so the
services' last records are shipped before the shipper stops."""

from __future__ import annotations

import dataclasses
import secrets
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from custos.audit.signing import generate_key_pair
from custos.children import Supervisor
from custos.envoy_config import ENVOY_FIXED_ARGS, EnvoySettings, envoy_binary, render_bootstrap
from custos.errors import StackError
from custos.net import free_ports, ports_in_use

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEMO_SERVER = PROJECT_ROOT / "examples" / "demo_mcp_server.py"
EXAMPLE_POLICY = PROJECT_ROOT / "examples" / "policy.yaml"
EXAMPLE_MASKING = PROJECT_ROOT / "examples" / "masking.yaml"
PSEUDONYM_KEY_ENV = "CUSTOS_PSEUDONYM_KEY"
AUDIENCE = "custos-local"
UPSTREAM_TOKEN_ENV = "CUSTOS_UPSTREAM_TOKEN"
LOCAL_PROJECT = "custos-local"  # the Cloud Logging project the local emulator stands for


@dataclass(frozen=True)
class Ports:
    envoy: int = 8080
    envoy_admin: int = 9901
    envoy_ready: int = 9902
    authz: int = 9001
    authz_metrics: int = 9002
    issuer: int = 9100
    mcp: int = 9101
    extproc: int = 9003
    extproc_metrics: int = 9004
    logging: int = 9105  # the local Cloud Logging API emulator
    shipper_metrics: int = 9106

    @classmethod
    def free(cls) -> Ports:
        return cls(*free_ports(11))


@dataclass
class LocalStack:
    run_dir: Path
    ports: Ports = field(default_factory=Ports)
    policy: Path = EXAMPLE_POLICY
    quiet: bool = False  # tests keep child output out of their own unless it fails
    output: list[str] = field(default_factory=list)
    upstream_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    masking: Path = EXAMPLE_MASKING
    demo_env: dict[str, str] = field(default_factory=dict)  # e.g. to make it misbehave
    # A fresh key per start: pseudonyms are stable for one run of the local stack.
    pseudonym_key: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    # A Logging API someone else runs (a test's in-process emulator); None: start one.
    logging_endpoint: str | None = None
    # Tests read what reached the MCP server in header_log. It holds the sidecar's upstream
    # credential and who called: never written unless asked for.
    log_upstream_headers: bool = False
    # Envoy settings a test changes (a load balancer in front, tighter limits).
    envoy_overrides: dict[str, Any] = field(default_factory=dict)
    supervisor: Supervisor = field(init=False)

    def __post_init__(self) -> None:
        # Every path the stack writes into a generated configuration is absolute: the
        # services resolve a relative one against the configuration file's own folder
        # (the rule for every file Custos reads), not against this working directory.
        self.run_dir = self.run_dir.resolve()
        self.policy = self.policy.resolve()
        self.masking = self.masking.resolve()
        self.supervisor = Supervisor(on_line=self._show)

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
        # A port taken by another process (a `make run` still running) would pass the
        # readiness check of the child that cannot bind it: the stack would talk to that
        # process instead.
        if busy := ports_in_use(list(dataclasses.astuple(self.ports))):
            which = (
                f"port {busy[0]} is" if len(busy) == 1 else f"ports {', '.join(map(str, busy))} are"
            )
            raise StackError(
                f"{which} in use on 127.0.0.1 (another `make run`?): stop what holds it, or "
                "start with `custos run --free-ports`"
            )
        self.run_dir.mkdir(parents=True, exist_ok=True)
        python = sys.executable
        await self.supervisor.spawn(
            "issuer",
            [python, "-m", "custos", "dev-issuer", "--port", str(self.ports.issuer)],
            port=self.ports.issuer,
        )
        await self.supervisor.spawn(
            "mcp",
            [python, str(DEMO_SERVER), "--port", str(self.ports.mcp)],
            port=self.ports.mcp,
            env={**self._header_log_env(), **self.demo_env},
        )
        self.write_audit_config()
        if self.logging_endpoint is None:
            await self.supervisor.spawn("logging", self.emulator_command(), self.ports.logging)
        await self.start_shipper()
        await self.start_authz()
        await self.start_extproc()
        bootstrap = self.run_dir / "envoy.yaml"
        bootstrap.write_text(render_bootstrap(self.envoy_settings()))
        await self.supervisor.spawn(
            "envoy",
            [
                envoy_binary(),
                "-c",
                str(bootstrap),
                "--log-level",
                "warn",
                *ENVOY_FIXED_ARGS,
                # Access log lines reach the terminal within a second, not ten.
                "--file-flush-interval-msec",
                "500",
            ],
            port=self.ports.envoy,
        )
        if exited := self.supervisor.exited():
            raise StackError(f"{', '.join(exited)} exited while the stack started")

    def _header_log_env(self) -> dict[str, str]:
        if not self.log_upstream_headers:
            return {}
        return {"DEMO_MCP_HEADER_LOG": str(self.header_log)}

    async def start_authz(self) -> None:
        config = self.write_authz_config()
        await self.supervisor.spawn(
            "ext_authz",
            [
                *(sys.executable, "-m", "custos", "extauthz"),
                *("--config", str(config), "--audit", str(self.audit_config)),
            ],
            port=self.ports.authz,
            env={UPSTREAM_TOKEN_ENV: self.upstream_token},
        )

    async def start_extproc(self) -> None:
        await self.supervisor.spawn(
            "ext_proc",
            self.extproc_command(),
            port=self.ports.extproc,
            env={PSEUDONYM_KEY_ENV: self.pseudonym_key},
        )

    async def start_shipper(self) -> None:
        await self.supervisor.spawn("shipper", self.shipper_command(), self.ports.shipper_metrics)

    def extproc_command(self, audit: bool = True) -> list[str]:
        return [
            *(sys.executable, "-m", "custos", "extproc"),
            *("--masking", str(self.masking), "--policy", str(self.policy)),
            *("--listen", f"127.0.0.1:{self.ports.extproc}"),
            *("--metrics-listen", f"127.0.0.1:{self.ports.extproc_metrics}"),
            *(("--audit", str(self.audit_config)) if audit else ()),
        ]

    def emulator_command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "custos",
            "logging",
            "emulator",
            "--port",
            str(self.ports.logging),
        ]

    def shipper_command(self) -> list[str]:
        return [
            *(sys.executable, "-m", "custos", "shipper", "--audit", str(self.audit_config)),
            *("--metrics-listen", f"127.0.0.1:{self.ports.shipper_metrics}"),
        ]

    @property
    def audit_config(self) -> Path:
        return self.run_dir / "audit.yaml"

    @property
    def spool_dir(self) -> Path:
        return self.run_dir / "spool"

    @property
    def audit_public_key(self) -> Path:
        return self.run_dir / "audit-signing.pub"

    def write_audit_config(self) -> None:
        """A signing key made for this run (never a checked-in one), a spool in the run
        directory, and shipping to the local Logging API emulator."""
        private = self.run_dir / "audit-signing.pem"
        if not private.exists():
            generate_key_pair(private, self.audit_public_key)
        config = {
            "spool_dir": str(self.spool_dir),
            "signing_key": str(private),
            "checkpoint_every_seconds": 5,
            "shipping": {
                "project": LOCAL_PROJECT,
                "endpoint": self.logging_endpoint or f"127.0.0.1:{self.ports.logging}",
                "poll_seconds": 0.1,
                "max_backoff_seconds": 1,
            },
        }
        self.audit_config.write_text(yaml.safe_dump(config, sort_keys=False))

    def write_authz_config(self) -> Path:
        config = self.run_dir / "extauthz.yaml"
        config.write_text(yaml.safe_dump(self.authz_config(), sort_keys=False))
        return config

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
            ready_port=self.ports.envoy_ready,
            authz_port=self.ports.authz,
            extproc_port=self.ports.extproc,
            upstream_port=self.ports.mcp,
            public_url=f"http://127.0.0.1:{self.ports.envoy}",
            authorization_servers=(self.issuer_url,),
            **self.envoy_overrides,
        )

    def _show(self, name: str, line: str) -> None:
        shown = f"{name:<9}| {line}"
        self.output.append(shown)
        if not self.quiet:
            print(shown, flush=True)

    async def stop_child(self, name: str) -> None:
        await self.supervisor.stop(name)

    async def stop(self) -> None:
        await self.supervisor.stop_all()

    async def wait_any_exit(self) -> str:
        return await self.supervisor.wait_any_exit()
