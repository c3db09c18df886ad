"""What ext_authz costs: bare Envoy against Envoy + ext_authz, in one run (`make bench`).

Starts, on loopback: the development OIDC issuer, a trivial upstream (an Envoy that
answers 200 itself), ext_authz with the example policy grown by seven rules (10 at
least), and two front Envoys rendered from the project's bootstrap: one as shipped, one
with only the ext_authz filter removed. Both fronts proxy to the same upstream and
receive the same tools/call with a valid token. Each is measured at maximum load with
wrk and at a fixed rate with an open-loop generator; then the throughput ratio and the
p99 added are judged against the targets of issue 2 (>= 60 % of bare throughput,
<= 1 ms p99 added at 500 req/s).

`--profile` runs ext_authz under cProfile and prints where its time goes."""

from __future__ import annotations

import argparse
import os
import pstats
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
from fixtures import (
    TOOL_CALL_BODY,
    UPSTREAM_RESULT,
    authz_bootstrap,
    request_headers,
    write_policy,
)
from harness import (
    OPEN_LOOP_CONNECTIONS,
    RESULTS_DIR,
    BenchError,
    Front,
    finish,
    measure,
    parse_args,
    start_common,
    start_fronts,
    supervised,
    write_wrk_script,
)
from harness import main as harness_main
from openloop import Target, send_one
from prometheus_client.parser import text_string_to_metric_families
from report import Setup, TargetRun, render, to_json
from wrkrun import wrk_binary

from custos.children import Supervisor
from custos.stack import LocalStack, Ports


@dataclass(frozen=True)
class Bench:
    work: Path
    stack: LocalStack  # for its ports and the ext_authz / Envoy settings it derives
    token: str
    bare: Front
    authz: Front
    wrk_script: Path
    rules: int  # in the grown policy

    def target(self, front: Front, with_token: bool = True) -> Target:
        return front.target(request_headers(self.token), TOOL_CALL_BODY, with_token)


async def start(children: Supervisor, work: Path, profile: Path | None) -> Bench:
    """Every service, started in dependency order and checked ready."""
    ports = Ports.free()  # `mcp` goes to the trivial upstream, in the MCP server's place
    policy = work / "policy.yaml"
    rules = write_policy(policy)
    stack = LocalStack(run_dir=work, ports=ports, policy=policy, quiet=True)
    token = await start_common(children, work, stack, UPSTREAM_RESULT, profile)

    bare, authz = await start_fronts(children, work, stack, ("envoy-authz", authz_bootstrap))
    script = write_wrk_script(work, token, TOOL_CALL_BODY)
    return Bench(work, stack, token, bare, authz, script, rules)


async def check_paths(bench: Bench) -> None:
    """Before measuring: both fronts answer the call with the upstream's 200, and the
    ext_authz front really consults ext_authz (no token: 401) while the bare one does not."""
    expectations = [
        (bench.target(bench.bare), 200),
        (bench.target(bench.authz), 200),
        (bench.target(bench.bare, with_token=False), 200),
        (bench.target(bench.authz, with_token=False), 401),
    ]
    for target, expected in expectations:
        status, body = await send_one(target)
        if status != expected:
            raise BenchError(
                f"port {target.port}: expected {expected}, got {status}: {body[:300]!r}"
            )
        if expected == 200 and body.decode() != UPSTREAM_RESULT:
            raise BenchError(
                f"port {target.port}: the answer is not the upstream's: {body[:300]!r}"
            )


async def measure_front(
    bench: Bench, children: Supervisor, front: Front, args: argparse.Namespace
) -> TargetRun:
    run, decisions = await measure(
        children,
        front,
        bench.target(front),
        bench.wrk_script,
        args,
        ("ext_authz",),
        sample=lambda: authz_metrics(bench),
    )
    count, seconds = decisions.pop("count", 0.0), decisions.pop("seconds", 0.0)
    return replace(
        run,
        authz_decisions={k: v for k, v in decisions.items() if v},
        authz_mean_decision_ms=seconds / count * 1e3 if count else None,
    )


async def authz_metrics(bench: Bench) -> dict[str, float]:
    """ext_authz's decision counters by effect/rule, and its latency histogram's sum and
    count: the pipeline's own view of the time it spends per decision."""
    url = f"http://127.0.0.1:{bench.stack.ports.authz_metrics}/metrics"
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(url)
    response.raise_for_status()
    figures: dict[str, float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == "custos_authz_decisions_total":
                key = f"{sample.labels['effect']}:{sample.labels['rule']}"
                figures[key] = figures.get(key, 0.0) + sample.value
            elif sample.name == "custos_authz_decision_seconds_sum":
                figures["seconds"] = sample.value
            elif sample.name == "custos_authz_decision_seconds_count":
                figures["count"] = sample.value
    return figures


def print_profile(path: Path, limit: int = 25) -> None:
    if not path.exists():
        raise BenchError(f"ext_authz wrote no profile to {path}")
    stats = pstats.Stats(str(path), stream=sys.stdout)
    stats.strip_dirs()
    print(f"\next_authz profile ({path}); start-up and both loads included")
    print("--- by cumulative time ---")
    stats.sort_stats(pstats.SortKey.CUMULATIVE).print_stats(limit)
    print("--- by own time ---")
    stats.sort_stats(pstats.SortKey.TIME).print_stats(limit)


async def run(args: argparse.Namespace) -> int:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    profile = RESULTS_DIR / f"extauthz-{stamp}.prof" if args.profile else None
    if profile:
        profile.parent.mkdir(parents=True, exist_ok=True)
    wrk_binary()  # fail before starting anything when wrk is missing
    async with supervised() as (children, work):
        bench = await start(children, work, profile)
        await check_paths(bench)
        bare = await measure_front(bench, children, bench.bare, args)
        authz = await measure_front(bench, children, bench.authz, args)
    setup = Setup(
        cpus=os.cpu_count() or 0,
        rules=bench.rules,
        duration=args.duration,
        connections=args.connections,
        rate=args.rate,
        open_loop_connections=OPEN_LOOP_CONNECTIONS,
        profiled=profile is not None,
    )
    print()
    print(render(setup, bare, authz))
    code = finish(args, "authz_overhead", stamp, to_json(setup, bare, authz), (bare, authz))
    if profile:
        print_profile(profile)
    return code


def main() -> int:
    return harness_main(run, parse_args(__doc__.splitlines()[0], 500, profile=True))


if __name__ == "__main__":
    sys.exit(main())
