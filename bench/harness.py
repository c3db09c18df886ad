"""What the benchmarks share: the processes they start before measuring, the front
Envoys they compare, their command line and their way of failing."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import httpx
from children import cpu_seconds, main_thread_cpu_seconds, own_cpu_seconds, supervisor, tails
from fixtures import bare_bootstrap, request_headers, upstream_bootstrap, wrk_script
from openloop import Target, run_open_loop
from report import GENERATOR, TargetRun, main_thread, save
from wrkrun import WrkFailed, run_wrk

from custos.children import Supervisor
from custos.envoy_config import EnvoySettings, envoy_binary
from custos.net import free_port
from custos.stack import UPSTREAM_TOKEN_ENV, LocalStack

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
MCP_PATH = "/mcp"
WARMUP_SECONDS = 2
SETTLE_SECONDS = 1.0  # let sockets and queues drain between one load and the next
OPEN_LOOP_CONNECTIONS = 8
# Every Envoy gets one worker thread: on two CPUs, more workers would only compete with
# each other, the load generator and the Python services, and blur the comparison.
ENVOY_FLAGS = ["--concurrency", "1", "--disable-hot-restart", "--log-level", "warn"]


class BenchError(RuntimeError):
    pass


@dataclass(frozen=True)
class Front:
    """One front Envoy under test."""

    name: str
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{MCP_PATH}"

    def target(self, headers: dict[str, str], body: bytes, with_token: bool = True) -> Target:
        sent = dict(headers)
        if not with_token:
            del sent["authorization"]
        return Target("127.0.0.1", self.port, MCP_PATH, sent, body)


FLOORS = ("no-rules", "no-processing")


def parse_args(
    description: str,
    default_rate: float,
    argv: list[str] | None = None,
    profile: bool = False,
    floor: bool = False,
) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections")
    parser.add_argument("--rate", type=float, default=default_rate, help="fixed rate, req/s")
    if profile:
        parser.add_argument(
            "--profile", action="store_true", help="run ext_authz under cProfile, print its top"
        )
    if floor:
        parser.add_argument(
            "--no-audit",
            action="store_true",
            help="ext_authz and ext_proc without audit records (no spool, no shipper)",
        )
        parser.add_argument(
            "--floor",
            choices=FLOORS,
            help="no-rules: ext_proc with rules that find nothing; no-processing: a server "
            "in ext_proc's place that does no work (the gRPC hops alone)",
        )
    parser.add_argument(
        "--no-save", action="store_true", help=f"do not write JSON figures to {RESULTS_DIR}"
    )
    args = parser.parse_args(argv)
    if args.duration < 1 or args.connections < 1 or args.rate <= 0:
        parser.error("--duration, --connections and --rate must be positive")
    return args


async def start_common(
    children: Supervisor,
    work: Path,
    stack: LocalStack,
    upstream_body: str,
    profile: Path | None = None,
    audit: bool = False,
) -> str:
    """The development issuer, the trivial upstream answering `upstream_body` and
    ext_authz (under cProfile when `profile` names a file; recording refusals with
    `audit`, after the Logging API emulator and the shipper); returns alice's token."""
    python = sys.executable
    ports = stack.ports
    issuer = [python, "-m", "custos", "dev-issuer", "--port", str(ports.issuer)]
    await children.spawn("issuer", issuer, ports.issuer)
    token = await fetch_token(stack.issuer_url)

    upstream = work / "upstream.yaml"
    upstream.write_text(upstream_bootstrap(ports.mcp, upstream_body))
    await children.spawn("upstream", [envoy_binary(), "-c", str(upstream), *ENVOY_FLAGS], ports.mcp)

    audit_flags: list[str] = []
    if audit:
        stack.write_audit_config()
        await children.spawn("logging", stack.emulator_command(), ports.logging)
        await children.spawn("shipper", stack.shipper_command(), ports.shipper_metrics)
        audit_flags = ["--audit", str(stack.audit_config)]
    config = stack.write_authz_config()
    profiler = ["-m", "cProfile", "-o", str(profile)] if profile else []
    await children.spawn(
        "ext_authz",
        [python, *profiler, "-m", "custos", "extauthz", "--config", str(config), *audit_flags],
        ports.authz,
        env={UPSTREAM_TOKEN_ENV: stack.upstream_token},
    )
    return token


async def start_fronts(
    children: Supervisor,
    work: Path,
    stack: LocalStack,
    other: tuple[str, Callable[[EnvoySettings], str]],
) -> tuple[Front, Front]:
    """The bare front (the shipped bootstrap without Custos's filters) and the front under
    test, named and rendered by `other`, both in front of the same upstream."""
    settings = stack.envoy_settings()
    bare = Front("envoy-bare", free_port())
    bare_settings = settings.model_copy(
        update={"listen_port": bare.port, "admin_port": 0, "ready_port": 0}
    )
    name, render = other
    measured = Front(name, stack.ports.envoy)
    await spawn_envoy(children, work, bare, bare_bootstrap(bare_settings))
    await spawn_envoy(children, work, measured, render(settings))
    return bare, measured


def write_wrk_script(work: Path, token: str, body: bytes) -> Path:
    script = work / "tools_call.lua"
    wrk_script(script, request_headers(token), body)
    return script


async def fetch_token(issuer_url: str) -> str:
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.post(
            f"{issuer_url}/token", json={"sub": "alice", "groups": ["phi-readers"]}
        )
    response.raise_for_status()
    return str(response.json()["access_token"])


async def spawn_envoy(children: Supervisor, work: Path, front: Front, bootstrap: str) -> None:
    path = work / f"{front.name}.yaml"
    path.write_text(bootstrap)
    await children.spawn(front.name, [envoy_binary(), "-c", str(path), *ENVOY_FLAGS], front.port)


async def measure(
    children: Supervisor,
    front: Front,
    target: Target,
    wrk_script_path: Path,
    args: argparse.Namespace,
    services: Iterable[str],
    sample: Callable[[], Awaitable[dict[str, float]]] | None = None,
) -> tuple[TargetRun, dict[str, float]]:
    """One front under both loads: wrk at maximum (after a warm-up), then the open-loop
    generator at the fixed rate, with the CPU of every process over each. Returns the run
    and how much `sample`'s figures (a service's own metrics) grew over the wrk load."""
    print(
        f"measuring {front.name}: warm-up, wrk for {args.duration} s, then {args.rate:g} req/s "
        f"for {args.duration} s",
        flush=True,
    )
    await run_wrk(front.url, wrk_script_path, args.connections, WARMUP_SECONDS)
    sampled_before = await sample() if sample else {}
    cpu_before = cpu_snapshot(children, services)
    wrk = await run_wrk(front.url, wrk_script_path, args.connections, args.duration)
    cpu_max = {**difference(cpu_snapshot(children, services), cpu_before), "wrk": wrk.cpu_seconds}
    sampled = difference(await sample(), sampled_before) if sample else {}

    await asyncio.sleep(SETTLE_SECONDS)
    cpu_before = cpu_snapshot(children, services)
    open_loop = await run_open_loop(target, args.rate, args.duration, OPEN_LOOP_CONNECTIONS)
    cpu_fixed = difference(cpu_snapshot(children, services), cpu_before)
    return TargetRun(front.name, wrk, open_loop, cpu_max, cpu_fixed, authz_decisions={}), sampled


def cpu_snapshot(children: Supervisor, services: Iterable[str]) -> dict[str, float]:
    """CPU seconds so far of every process, of each Python service's main thread (its
    event loop, under the GIL) and of this script (the open-loop generator)."""
    generator = own_cpu_seconds()
    threads = {
        main_thread(name): main_thread_cpu_seconds(children.children[name]) for name in services
    }
    return {**cpu_seconds(children), **threads, GENERATOR: generator}


def finish(
    args: argparse.Namespace,
    name: str,
    stamp: str,
    document: dict[str, object],
    runs: Iterable[TargetRun],
) -> int:
    """Writes the figures (unless --no-save); 1 when a fixed-rate response was not 200,
    which makes the whole measurement invalid."""
    if not args.no_save:
        path = RESULTS_DIR / f"{name}-{stamp}.json"
        save(path, document)
        print(f"\nfigures written to {path}")
    invalid = sum(run.open_loop.non_200 for run in runs)
    if invalid:
        print(f"\nINVALID: {invalid} responses at the fixed rate were not 200", file=sys.stderr)
        return 1
    return 0


@contextlib.asynccontextmanager
async def supervised() -> AsyncIterator[tuple[Supervisor, Path]]:
    """A work directory and the supervisor of the benchmark's processes (their output
    kept there): every process is stopped at the end, and a failure shows each one's last
    output first."""
    with tempfile.TemporaryDirectory(prefix="custos-bench-") as tmp:
        children = supervisor(Path(tmp))
        try:
            yield children, Path(tmp)
        except Exception:
            print(
                f"benchmark failed; last output of each process:\n{tails(children)}",
                file=sys.stderr,
            )
            raise
        finally:
            await children.stop_all()


def difference(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {name: value - before.get(name, 0.0) for name, value in after.items()}


def main(run: Callable[[argparse.Namespace], Awaitable[int]], args: argparse.Namespace) -> int:
    try:
        return asyncio.run(run(args))
    except KeyboardInterrupt:
        return 130
    except (BenchError, WrkFailed) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
