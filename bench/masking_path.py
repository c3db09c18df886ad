"""What the full path costs: bare Envoy against Envoy + ext_authz + ext_proc masking a
16 KB JSON-RPC result, with audit records on (issue 4, section 7; `--no-audit` leaves
them off), in one run (issue 3, section 5b).

    .venv/bin/python bench/masking_path.py [--duration 10] [--rate 200] [--connections 32]

Starts, on loopback: the development OIDC issuer, a trivial upstream (an Envoy that
answers every request with the same ~16 KB tools/call result of fake patient records),
ext_authz with the example policy, ext_proc with the example masking rules, and two front
Envoys rendered from the project's bootstrap: one as shipped (both filters), one with
ext_authz and ext_proc removed. Before measuring it checks that the full path's answer is
really masked (no SSN of the upstream's body left) and the bare one's is not; a benchmark
of unmasked or failing responses would be worthless. Each front is measured at maximum
load with wrk and at a fixed rate with the open-loop generator; the p99 added at the
fixed rate is judged against the target (<= 3 ms at 200 req/s)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
from fixtures import request_headers
from harness import (
    OPEN_LOOP_CONNECTIONS,
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
from report import TargetRun, cpu_rows, figure_rows, run_figures
from wrkrun import wrk_binary

from custos.children import Supervisor
from custos.envoy_config import render_bootstrap
from custos.stack import EXAMPLE_MASKING, PSEUDONYM_KEY_ENV, LocalStack, Ports

MAX_P99_ADDED_MS = 3.0  # issue 3, section 5b: at 200 req/s
RECORDS = 8
TARGET_BYTES = 16_000
PYTHON_SERVICES = ("ext_authz", "ext_proc")
NO_RULES = Path(__file__).parent / "mask_nothing.yaml"
NULL_EXTPROC = Path(__file__).parent / "null_extproc.py"

# Allowed for alice (phi-readers) by readers-read-patients in examples/policy.yaml.
TOOL_CALL_BODY = orjson.dumps(
    {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "get_patient_record", "arguments": {"patient_id": "pt-0001"}},
    }
)

FIRST = ["Alice", "Bruno", "Chen", "Dalia", "Emeka", "Freya", "Goran", "Hana"]
LAST = ["Fakenham", "Placeholder", "Mockridge", "Sampleton", "Testwood", "Dummett"]
CONDITIONS = ["asthma", "type 2 diabetes", "hypertension", "migraine", "osteoarthritis"]


def fake_record(number: int) -> dict[str, str]:
    """One record shaped like the demo server's PatientRecord, derived from `number` alone
    (deterministic). SSNs use the never-issued 9xx areas and phones the 555-01xx fiction
    range, which the example masking rules accept as test data (ssn_test_areas)."""
    name = f"{FIRST[number % len(FIRST)]} {LAST[number % len(LAST)]}"
    dob = f"{1940 + number * 7 % 60}-{number % 12 + 1:02d}-{number * 3 % 28 + 1:02d}"
    phone = f"(555) 010-01{number:02d}"
    condition = CONDITIONS[number % len(CONDITIONS)]
    # The note repeats name, DOB and phone in prose, as the demo's does, and is long
    # enough that eight records, each sent twice, make about 16 KB.
    note = (
        f"{name} (DOB {dob}) was seen today for follow-up of {condition}. Symptoms are "
        f"stable on the current plan; no new complaints. Vitals within normal limits, "
        f"medication list reconciled, no adverse events since the last visit. "
        f"{name.split()[0]} asked to be called back at {phone} with lab results. Plan: "
        f"continue current therapy, repeat labs in six weeks, return visit in three months. "
        f"Allergies reviewed: none new. Current medications unchanged since the previous "
        f"visit; adherence reported as good. Patient education provided on warning signs "
        f"and when to seek urgent care; {name.split()[0]} verbalised understanding and "
        f"agreed with the plan. Next appointment to be booked by the front desk."
    )
    return {
        "patient_id": f"pt-{number:04d}",
        "mrn": f"MRN-{100000 + number}",
        "name": name,
        "date_of_birth": dob,
        "ssn": f"9{number:02d}-{10 + number:02d}-{3456 + number:04d}",
        "phone": phone,
        "email": f"{name.split()[0].lower()}.{LAST[number % len(LAST)].lower()}@example.com",
        "address": f"{10 + number} Imaginary Lane, Springfield, ZZ 0000{number % 10}",
        "clinical_note": note,
    }


def upstream_result() -> tuple[str, list[str]]:
    """The upstream's answer (a tools/call result as the MCP SDK shapes it: the records as
    JSON text and as structuredContent) and the SSNs in it, for the masking check."""
    records = [fake_record(n) for n in range(1, RECORDS + 1)]
    content: dict[str, Any] = {"query": "", "count": len(records), "patients": records}
    result = {
        "content": [{"type": "text", "text": json.dumps(content, indent=2)}],
        "structuredContent": content,
        "isError": False,
    }
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "result": result})
    if not 0.9 * TARGET_BYTES <= len(body) <= 1.2 * TARGET_BYTES:
        raise ValueError(f"the upstream result should be ~{TARGET_BYTES} bytes, is {len(body)}")
    return body, [r["ssn"] for r in records]


@dataclass(frozen=True)
class Bench:
    stack: LocalStack
    token: str
    bare: Front
    full: Front
    wrk_script: Path
    upstream_body: str
    ssns: list[str]
    floor: str | None  # what runs in ext_proc's place instead of masking (harness.FLOORS)

    def target(self, front: Front, with_token: bool = True) -> Target:
        return front.target(request_headers(self.token), TOOL_CALL_BODY, with_token)


async def start(children: Supervisor, work: Path, args: argparse.Namespace) -> Bench:
    """Every service, started in dependency order and checked listening."""
    ports = Ports.free()  # `mcp` goes to the trivial upstream, in the MCP server's place
    # The example policy and masking rules, exactly as `make run` uses them; for the
    # no-rules floor, rules that find nothing.
    floor = args.floor
    masking = NO_RULES if floor == "no-rules" else EXAMPLE_MASKING
    stack = LocalStack(run_dir=work, ports=ports, quiet=True, masking=masking)
    body, ssns = upstream_result()
    audit = not args.no_audit
    token = await start_common(children, work, stack, body, audit=audit)
    command = stack.extproc_command(audit)
    if floor == "no-processing":
        command = [sys.executable, str(NULL_EXTPROC), str(ports.extproc)]
    env = {PSEUDONYM_KEY_ENV: stack.pseudonym_key}
    await children.spawn("ext_proc", command, ports.extproc, env=env)

    # The shipped bootstrap, untouched: ext_authz and ext_proc both in the chain.
    bare, full = await start_fronts(children, work, stack, ("envoy-full", render_bootstrap))
    script = write_wrk_script(work, token, TOOL_CALL_BODY)
    return Bench(stack, token, bare, full, script, body, ssns, floor)


async def check_paths(bench: Bench) -> int:
    """Before measuring (and again after): the bare front passes the upstream's bytes
    through, SSNs and all; the full front answers 200 with a JSON-RPC result in which none
    of those SSNs is left, and 401 without a token. Returns the masked body's size."""
    status, body = await send_one(bench.target(bench.bare))
    if status != 200 or body.decode() != bench.upstream_body:
        raise BenchError(f"bare front: expected the upstream's 200, got {status}: {body[:300]!r}")
    if not all(ssn in body.decode() for ssn in bench.ssns):
        raise BenchError("bare front: the upstream's SSNs are not in its answer")

    status, body = await send_one(bench.target(bench.full))
    if status != 200:
        raise BenchError(f"full front: expected 200, got {status}: {body[:300]!r}")
    text = body.decode()
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BenchError(f"full front: the answer is not JSON: {body[:300]!r}") from exc
    if bench.floor:
        # Passed, or read, walked and written back with nothing to change.
        if document != json.loads(bench.upstream_body):
            raise BenchError(f"floor {bench.floor}: the answer was changed")
    elif leaked := [ssn for ssn in bench.ssns if ssn in text]:
        raise BenchError(f"full front: UNMASKED, SSNs {leaked} reached the client")
    elif text == bench.upstream_body:
        raise BenchError("full front: the answer is the upstream's, unchanged")
    if "result" not in document or document["result"].get("isError"):
        raise BenchError(f"full front: not a successful tools/call result: {body[:300]!r}")
    masked_size = len(body)

    status, body = await send_one(bench.target(bench.full, with_token=False))
    if status != 401:
        raise BenchError(f"full front without a token: expected 401, got {status}")
    return masked_size


async def measure_front(
    bench: Bench, children: Supervisor, front: Front, args: argparse.Namespace
) -> TargetRun:
    run, _ = await measure(
        children, front, bench.target(front), bench.wrk_script, args, PYTHON_SERVICES
    )
    return run


def p99_added(bare: TargetRun, full: TargetRun) -> float:
    return full.open_loop.latency_ms(99) - bare.open_loop.latency_ms(99)


def render(
    args: argparse.Namespace,
    bare: TargetRun,
    full: TargetRun,
    sizes: tuple[int, int],
    shipped: int,
) -> str:
    at = f"at {args.rate:g} req/s"

    added = p99_added(bare, full)
    verdict = "MET" if added <= MAX_P99_ADDED_MS else "MISSED"
    rules = {
        None: "example policy and masking rules",
        "no-rules": "masking rules that find nothing (--floor no-rules)",
        "no-processing": "a server that does no work in ext_proc's place (--floor no-processing)",
    }[args.floor]
    lines = [
        "Custos benchmark: bare Envoy vs the full path (ext_authz + ext_proc masking)",
        f"  machine: {os.cpu_count()} CPUs; every Envoy --concurrency 1; nothing pinned",
        f"  request: tools/call get_patient_record, valid token (alice, phi-readers), {rules}",
        "  audit: "
        + (
            "off (--no-audit)"
            if args.no_audit
            else f"on: each exchange spooled (fsync) before its answer; {shipped:,} records "
            "shipped to the local Logging API emulator"
        ),
        f"  upstream: an Envoy answering {sizes[0]} bytes ({RECORDS} fake records, as text "
        f"and structuredContent); masked answer: {sizes[1]} bytes",
        f"  max load: wrk -t1 -c{args.connections} -d{args.duration}s; fixed rate: "
        f"{args.rate:g} req/s for {args.duration} s, open loop, {OPEN_LOOP_CONNECTIONS} "
        "connections, latency from scheduled send",
        "",
        *figure_rows(args.rate, bare, full, "full path"),
        "",
        f"  p99 added {at}: {added:.3f} ms   target <= {MAX_P99_ADDED_MS:g} ms   {verdict}",
        *_saturation(args, full),
        f"  throughput ratio (full/bare): "
        f"{full.wrk.requests_per_second / bare.wrk.requests_per_second:.2f}",
        "",
        *cpu_rows(args.rate, bare, full, "full"),
    ]
    return "\n".join(lines)


def _saturation(args: argparse.Namespace, full: TargetRun) -> list[str]:
    """A fixed rate above what the full path sustains measures a growing queue, not the
    path's latency: say so rather than let the p99 pass for a per-request cost."""
    if full.wrk.requests_per_second >= args.rate:
        return []
    return [
        f"  NOTE: the full path's maximum ({full.wrk.requests_per_second:.0f} req/s) is below "
        f"{args.rate:g} req/s: the fixed-rate latency is mostly queueing"
    ]


def to_json(args: argparse.Namespace, bare: TargetRun, full: TargetRun) -> dict[str, object]:
    added = p99_added(bare, full)
    return {
        "setup": {
            "cpus": os.cpu_count(),
            "duration": args.duration,
            "connections": args.connections,
            "rate": args.rate,
            "floor": args.floor,
            "audit": not args.no_audit,
        },
        "bare": run_figures(bare),
        "full": run_figures(full),
        "p99_added_ms": added,
        "p99_added_met": added <= MAX_P99_ADDED_MS,
    }


async def shipped_records(stack: LocalStack) -> int:
    """What the shipper says it shipped: none would mean the path ran unaudited."""
    async with httpx.AsyncClient() as client:
        metrics = await client.get(f"http://127.0.0.1:{stack.ports.shipper_metrics}/metrics")
    for line in metrics.text.splitlines():
        if line.startswith("custos_audit_shipped_records_total "):
            shipped = int(float(line.split()[1]))
            if shipped == 0:
                raise BenchError("audit on, but the shipper shipped no record")
            return shipped
    raise BenchError("the shipper's metrics do not say what it shipped")


async def run(args: argparse.Namespace) -> int:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    wrk_binary()  # fail before starting anything when wrk is missing
    async with supervised() as (children, work):
        bench = await start(children, work, args)
        masked_size = await check_paths(bench)
        bare = await measure_front(bench, children, bench.bare, args)
        full = await measure_front(bench, children, bench.full, args)
        await check_paths(bench)  # still masking after the load, not failing open
        shipped = 0 if args.no_audit else await shipped_records(bench.stack)
    print()
    sizes = (len(bench.upstream_body.encode()), masked_size)
    print(render(args, bare, full, sizes, shipped))
    kind = f"masking_floor_{args.floor}" if args.floor else "masking_path"
    return finish(args, kind, stamp, to_json(args, bare, full), (bare, full))


def main() -> int:
    return harness_main(run, parse_args(__doc__.splitlines()[0], 200, floor=True))


if __name__ == "__main__":
    sys.exit(main())
