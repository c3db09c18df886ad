"""Pieces the audit tests share: a configuration with a key pair made for the test,
exchanges of the shape the services record, records made up as a forger would, a spool's
records read back, and a shipper of it to the emulator."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from google.cloud.logging_v2.services.logging_service_v2 import LoggingServiceV2Client
from google.protobuf import timestamp_pb2

from custos.audit.audit_pb2 import AuditRecord, Call, Decision, Exchange, Principal
from custos.audit.config import AuditConfig
from custos.audit.records import GENESIS_HASH, body, content_hash, record_id
from custos.audit.shipper import Shipper
from custos.audit.signing import generate_key_pair
from custos.audit.sources import from_spool
from custos.audit.spool import frame, scan, segment_path, segments
from custos.audit.writer import AuditWriter
from custos.cloud_logging.resource_names import log_path

WRITER = "extproc-test"  # the writer name audit_config gives
PROJECT = "custos-test"
LOG_ID = "custos-audit"
LOG = log_path(PROJECT, LOG_ID)
BIG_BODIES = {"max_bytes": 1_048_576}


def audit_config(tmp_path: Path, **overrides: Any) -> AuditConfig:
    key = tmp_path / "audit.pem"
    if not key.exists():
        generate_key_pair(key, tmp_path / "audit.pub")
    settings: dict[str, Any] = {
        "spool_dir": tmp_path / "spool",
        "signing_key": key,
        "writer": WRITER,
    }
    return AuditConfig.model_validate(settings | overrides)


def exchange(request_id: str, status: int = 200) -> Exchange:
    request = b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}'
    return Exchange(
        request_id=request_id,
        decision_id="d-" + request_id,
        principal=Principal(issuer="https://idp.example", subject="alice", groups=["care"]),
        http_method="POST",
        http_path="/mcp",
        calls=[Call(method="tools/call", tool="echo")],
        request=body(request, keep=True, max_bytes=1024),
        decision=Decision(effect="allow", code="allow", rule="care-team"),
        response=body(b'{"jsonrpc":"2.0","id":1,"result":{}}', keep=True, max_bytes=1024),
        status=status,
        outcome="complete",
    )


def big_exchange(request_id: str, size: int) -> Exchange:
    """An exchange whose response (a tool's text, as an MCP server answers) is `size`
    bytes, kept whole."""
    text = ("Patient note: seen today, doing well. " * (size // 38 + 1))[:size]
    answer = f'{{"jsonrpc":"2.0","id":1,"result":{{"content":[{{"text":"{text}"}}]}}}}'
    record = exchange(request_id)
    record.response.CopyFrom(body(answer.encode(), keep=True, max_bytes=BIG_BODIES["max_bytes"]))
    return record


def sealed(record: AuditRecord) -> AuditRecord:
    """`record` with the hash of its content, as a forger can make without any key."""
    record.hash = content_hash(record)
    return record


def stamp(when: dt.datetime) -> timestamp_pb2.Timestamp:
    stamped = timestamp_pb2.Timestamp()
    stamped.FromDatetime(when)
    return stamped


def made_up_chain(writer: str, times: list[dt.datetime]) -> list[AuditRecord]:
    """A chain made up by hand, one record per time: a chain start, then exchanges. Every
    hash and link holds; no checkpoint is signed, for want of the key."""
    chain = "f0f0f0f0f0f0f0f0"
    records: list[AuditRecord] = []
    for sequence, when in enumerate(times, start=1):
        record = AuditRecord(
            record_id=record_id(chain, sequence),
            writer=writer,
            chain=chain,
            sequence=sequence,
            previous_hash=records[-1].hash if records else GENESIS_HASH,
            time=stamp(when),
        )
        if records:
            record.exchange.CopyFrom(exchange(f"made-up-{sequence}"))
        else:
            record.chain_start.reason = "new spool"
        records.append(sealed(record))
    return records


def appended(last: AuditRecord, when: dt.datetime, request_id: str) -> AuditRecord:
    """An exchange record made up to follow `last` in its chain: its hash and link hold."""
    return sealed(
        AuditRecord(
            record_id=record_id(last.chain, last.sequence + 1),
            writer=last.writer,
            chain=last.chain,
            sequence=last.sequence + 1,
            previous_hash=last.hash,
            time=stamp(when),
            exchange=exchange(request_id),
        )
    )


def spool_of(directory: Path, records: list[AuditRecord]) -> None:
    """A writer's spool directory holding `records`, framed, in one segment."""
    directory.mkdir(parents=True)
    payloads = (r.SerializeToString(deterministic=True) for r in records)
    segment_path(directory, 1).write_bytes(b"".join(frame(p) for p in payloads))


async def write(
    config: AuditConfig, count: int, close: bool = True, prefix: str = "req"
) -> AuditWriter:
    """`count` exchanges by a writer of `config`, one after another, as requests that do
    not overlap: each record is a write of its own (so a small `segment_bytes` gives
    several segments). Closed, with its shutdown checkpoint, unless `close` is false."""
    writer = await AuditWriter.open(config, "extproc")
    for i in range(count):
        await writer.record(exchange(f"{prefix}-{i}"))
    if close:
        await writer.close()
    return writer


async def write_big(config: AuditConfig, *request_ids: str) -> None:
    """One exchange per request id, each with a 600,000-byte response (`config` must keep
    bodies that big: `bodies=BIG_BODIES`), by a writer of `config`, closed."""
    writer = await AuditWriter.open(config, "extproc")
    for request_id in request_ids:
        await writer.record(big_exchange(request_id, 600_000))
    await writer.close()


def fill_spool(tmp_path: Path, writer: AuditWriter) -> None:
    """A 70,000-byte segment put before the writer's own in `audit_config(tmp_path)`'s
    spool, and `writer` told to measure it: full, with a `max_spool_bytes` of 65,536."""
    (tmp_path / "spool" / WRITER / "000000000000.seg").write_bytes(bytes(70_000))
    writer.measure_spool()


def framed(path: Path) -> list[bytes]:
    """The payloads of a segment file, which must end with a whole frame."""
    result = scan(path.read_bytes())
    assert result.end == result.size, f"{path} does not end with a whole frame"
    return [payload for _, payload in result.frames]


def only_segment(tmp_path: Path) -> Path:
    """The one segment of the spool of `audit_config(tmp_path)`'s writer."""
    directory = tmp_path / "spool" / WRITER
    (number,) = segments(directory)
    return segment_path(directory, number)


def rewrite(path: Path, payloads: list[bytes]) -> None:
    """A segment file holding `payloads`, framed, in place of what it held."""
    path.write_bytes(b"".join(frame(p) for p in payloads))


def records_in(directory: Path) -> list[AuditRecord]:
    """The records of a writer's spool directory, oldest segment first: of each segment,
    the whole frames up to the first that is not (damaged, or cut short)."""
    return [
        AuditRecord.FromString(payload)
        for number in segments(directory)
        for _, payload in scan(segment_path(directory, number).read_bytes()).frames
    ]


def spooled(config: AuditConfig) -> list[AuditRecord]:
    """Every record the spool holds now, in written order."""
    records = []
    for found in from_spool(config.spool_dir):
        assert found.record is not None, found.problem
        records.append(found.record)
    return records


def shipper_for(config: AuditConfig, client: LoggingServiceV2Client, **options: Any) -> Shipper:
    """A shipper of `config`'s spool to PROJECT's LOG_ID."""
    # Backoff in milliseconds, so retries cost the test next to nothing.
    settings: dict[str, Any] = {"initial_backoff_seconds": 0.01, "max_backoff_seconds": 0.05}
    return Shipper(config.spool_dir, client, PROJECT, LOG_ID, **(settings | options))
