"""Audit throughput: records appended durably by one writer, and entries shipped to the
local Cloud Logging API emulator, each against a baseline measured in the same run.

    .venv/bin/python bench/audit_throughput.py [--seconds 5] [--in-flight 256]

Targets (issue 4, section 7): at least 5,000 records/s per core appended durably by one
writer, and at least 1,000 entries/s shipped.

- append: one AuditWriter (hash chain, checkpoints, group commit with fdatasync) takes
  records from `--in-flight` concurrent requests. Baseline: one write and one fdatasync
  per record, as a spool without group commit would do, on the same disk.
- ship: a Shipper sends a spool of those records to the emulator with the real client
  library. Baseline: the same entries, built beforehand, written with the same client and
  batch size, so the ratio is the shipper's own cost (reading, parsing, converting)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

# Named as this script always called it; the lines that time the shipper stay as they were.
from children import own_cpu_seconds as cpu_seconds
from harness import RESULTS_DIR
from report import save

from custos.audit.audit_pb2 import Call, Decision, Exchange, Principal
from custos.audit.config import AuditConfig
from custos.audit.entries import to_entries
from custos.audit.records import body
from custos.audit.shipper import Shipper
from custos.audit.signing import generate_key_pair
from custos.audit.sources import from_spool
from custos.audit.spool import frame
from custos.audit.writer import AuditWriter
from custos.cloud_logging.clients import logging_client
from custos.cloud_logging.emulator import Emulator
from custos.cloud_logging.resource_names import log_path

PROJECT = "custos-bench"
TARGET_APPEND_PER_CORE = 5000
TARGET_SHIPPED = 1000


def sample_exchange(number: int) -> Exchange:
    """About the size of a masked tools/call answer of the demo server (2 KB)."""
    request = (
        b'{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":'
        b'"get_patient_record","arguments":{"patient_id":"pt-0001"}}}' % number
    )
    answer = b'{"jsonrpc":"2.0","id":%d,"result":{"structuredContent":{"note":"%s"}}}' % (
        number,
        b"[NAME:33f8d4] (DOB [DATE]) was seen today for follow-up. " * 30,
    )
    return Exchange(
        request_id=f"bench-{number}",
        principal=Principal(issuer="https://idp.example", subject="alice", groups=["care"]),
        http_method="POST",
        http_path="/mcp",
        calls=[Call(method="tools/call", tool="get_patient_record")],
        request=body(request, True, 65536),
        decision=Decision(effect="allow", code="allow", rule="readers-read-patients"),
        response=body(answer, True, 65536),
        status=200,
        outcome="complete",
    )


async def append(config: AuditConfig, seconds: float, in_flight: int) -> dict[str, float]:
    writer = await AuditWriter.open(config, "bench")
    records = [sample_exchange(n) for n in range(in_flight)]
    done = 0
    deadline = time.perf_counter() + seconds

    async def producer(record: Exchange) -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await writer.record(record)
            done += 1

    cpu, started = cpu_seconds(), time.perf_counter()
    await asyncio.gather(*(producer(r) for r in records))
    wall, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    await writer.close()
    return {
        "records": done,
        "records_per_s": done / wall,
        "records_per_cpu_s": done / cpu,
        "cpu_us_per_record": cpu / done * 1e6,
    }


def fsync_per_record(directory: Path, seconds: float) -> dict[str, float]:
    payload = frame(sample_exchange(0).SerializeToString())
    fd = os.open(directory / "baseline.seg", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    done, deadline = 0, time.perf_counter() + seconds
    started = time.perf_counter()
    while time.perf_counter() < deadline:
        os.write(fd, payload)
        os.fdatasync(fd)
        done += 1
    os.close(fd)
    return {"records": done, "records_per_s": done / (time.perf_counter() - started)}


def ship(config: AuditConfig, batch: int) -> dict[str, float]:
    with Emulator().start() as api, logging_client(api.endpoint) as client:
        shipper = Shipper(config.spool_dir, client, PROJECT, "custos-audit", batch)
        cpu, started = cpu_seconds(), time.perf_counter()
        shipped = shipper.ship_once()
        wall, cpu = time.perf_counter() - started, cpu_seconds() - cpu
        stored = len(api.entries(log_path(PROJECT, "custos-audit")))
    if stored != shipped:
        raise SystemExit(f"the emulator stored {stored} entries of {shipped} shipped")
    return {"entries": shipped, "entries_per_s": shipped / wall, "cpu_s": cpu}


def ship_prebuilt(config: AuditConfig, batch: int) -> dict[str, float]:
    records = [f.record for f in from_spool(config.spool_dir) if f.record is not None]
    name = log_path(PROJECT, "baseline")
    entries = [
        e for r in records for e in to_entries(r, r.SerializeToString(deterministic=True), name)
    ]
    with Emulator().start() as api, logging_client(api.endpoint) as client:
        started = time.perf_counter()
        for i in range(0, len(entries), batch):
            client.write_log_entries(log_name=name, entries=entries[i : i + batch])
        wall = time.perf_counter() - started
    return {"entries": len(entries), "entries_per_s": len(entries) / wall}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--in-flight", type=int, default=256)
    parser.add_argument("--batch", type=int, default=500, help="entries per Logging write")
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=Path.cwd()) as scratch:
        work = Path(scratch)
        generate_key_pair(work / "k.pem", work / "k.pub")
        config = AuditConfig(spool_dir=work / "spool", signing_key=work / "k.pem")
        baseline = fsync_per_record(work, args.seconds)
        appended = asyncio.run(append(config, args.seconds, args.in_flight))
        shipped = ship(config, args.batch)
        prebuilt = ship_prebuilt(config, args.batch)
    figures = {
        "append": appended,
        "append_baseline_fsync_per_record": baseline,
        "ship": shipped,
        "ship_baseline_prebuilt_entries": prebuilt,
    }
    print(f"append, one writer, {args.in_flight} in flight, {args.seconds:g} s:")
    print(
        f"  {appended['records_per_s']:,.0f} records/s durable; "
        f"{appended['records_per_cpu_s']:,.0f} records per CPU second "
        f"({appended['cpu_us_per_record']:.0f} us each); target "
        f"{TARGET_APPEND_PER_CORE:,}/s per core: "
        + ("MET" if appended["records_per_cpu_s"] >= TARGET_APPEND_PER_CORE else "MISSED")
    )
    print(
        f"  baseline, one fdatasync per record: {baseline['records_per_s']:,.0f} records/s "
        f"(group commit: x{appended['records_per_s'] / baseline['records_per_s']:.1f})"
    )
    print(f"ship to the local Logging API emulator, batches of {args.batch}:")
    print(
        f"  {shipped['entries_per_s']:,.0f} entries/s ({shipped['entries']:,} entries); target "
        f"{TARGET_SHIPPED:,}/s: "
        + ("MET" if shipped["entries_per_s"] >= TARGET_SHIPPED else "MISSED")
    )
    print(
        f"  baseline, prebuilt entries, same client: {prebuilt['entries_per_s']:,.0f} entries/s "
        f"(shipper at {shipped['entries_per_s'] / prebuilt['entries_per_s']:.0%} of it)"
    )
    if not args.no_save:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        save(RESULTS_DIR / f"audit_throughput-{stamp}.json", figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
