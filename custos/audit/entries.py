"""Audit records as Cloud Logging entries, and back.

An entry's jsonPayload is the record's proto3 JSON form, so the console and log queries
read it field by field (`jsonPayload.exchange.principal.subject="alice"`); its insertId is
the record id, so a batch sent twice is kept once. A record too big for one entry (the API
takes 256 KiB) goes in numbered parts, each carrying a slice of the record's bytes."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from google.api import monitored_resource_pb2
from google.cloud.logging_v2.types import LogEntry
from google.logging.type import log_severity_pb2
from google.protobuf import json_format, struct_pb2
from google.protobuf.message import DecodeError

from custos.audit.audit_pb2 import AuditRecord
from custos.audit.verify import Found

# Under the API's 256 KiB per entry, with room for the entry's other fields.
MAX_ENTRY_BYTES = 240 * 1024
_PART_BYTES = 160 * 1024  # raw bytes per part: about 214 KiB once in base64
# Under the API's 10 MB per write request, with room for the request's own fields.
MAX_REQUEST_BYTES = 9_000_000
PART = "custos_part"
_RAW_ENTRY = LogEntry.pb()  # the google.logging.v2.LogEntry message class


def log_name(project: str, log_id: str) -> str:
    return f"projects/{project}/logs/{quote(log_id, safe='')}"


def to_entries(record: AuditRecord, payload: bytes, name: str) -> list[LogEntry]:
    """`payload` is the record's bytes as spooled (its canonical form with the hash).

    Entries are built as the protobuf messages behind the client's types and wrapped, not
    converted: proto-plus marshals a Struct field by field, five times slower."""
    entry = _entry(record, record.record_id, name)
    entry.json_payload.update(json_format.MessageToDict(record, preserving_proto_field_name=True))
    if entry.ByteSize() <= MAX_ENTRY_BYTES:
        return [LogEntry.wrap(entry)]
    slices = [payload[i : i + _PART_BYTES] for i in range(0, len(payload), _PART_BYTES)]
    digest = hashlib.sha256(payload).hexdigest()
    parts = []
    for index, piece in enumerate(slices, start=1):
        part = _entry(record, f"{record.record_id}.part{index}", name)
        part.json_payload.update(
            {
                PART: {
                    "record_id": record.record_id,
                    "index": index,
                    "count": len(slices),
                    "sha256": digest,
                },
                "data": base64.b64encode(piece).decode(),
            }
        )
        parts.append(LogEntry.wrap(part))
    return parts


def _entry(record: AuditRecord, insert_id: str, name: str) -> Any:
    labels = {"writer": record.writer, "chain": record.chain}
    if record.HasField("exchange"):
        labels["request_id"] = record.exchange.request_id
    return _RAW_ENTRY(
        log_name=name,
        resource=monitored_resource_pb2.MonitoredResource(type="global"),
        timestamp=record.time,
        insert_id=insert_id,
        severity=log_severity_pb2.NOTICE,
        labels=labels,
    )


def from_entries(entries: Iterator[LogEntry]) -> Iterator[Found]:
    """Records from entries (parts put back together), in chain order: entries are listed
    by timestamp, and a wall clock may step back."""
    records: list[Found] = []
    parts: dict[str, dict[int, tuple[str, struct_pb2.Struct]]] = {}
    for entry in entries:
        raw = LogEntry.pb(entry).json_payload
        where = f"entry {entry.insert_id}"
        if PART in raw.fields:
            fields = raw.fields[PART].struct_value.fields
            pieces = parts.setdefault(fields["record_id"].string_value, {})
            pieces[int(fields["index"].number_value)] = (where, raw)
            continue
        records.append(_parsed(where, raw))
    for record_id, pieces in parts.items():
        records.append(_joined(record_id, pieces))
    return iter(sorted(records, key=_order))


def _parsed(where: str, payload: struct_pb2.Struct) -> Found:
    record = AuditRecord()
    try:
        json_format.ParseDict(json_format.MessageToDict(payload), record)
    except json_format.ParseError as exc:
        return Found(where, None, f"not an audit record: {exc}")
    return Found(where, record)


def _joined(record_id: str, pieces: dict[int, tuple[str, struct_pb2.Struct]]) -> Found:
    where = f"entry {record_id}.part*"
    first = next(iter(pieces.values()))[1].fields[PART].struct_value.fields
    count = int(first["count"].number_value)
    if sorted(pieces) != list(range(1, count + 1)):
        return Found(where, None, f"{count - len(pieces)} of its {count} parts are missing")
    try:
        data = b"".join(
            base64.b64decode(pieces[i][1].fields["data"].string_value, validate=True)
            for i in range(1, count + 1)
        )
        record = AuditRecord.FromString(data)
    except (ValueError, DecodeError):
        return Found(where, None, "its parts do not make an audit record")
    if hashlib.sha256(data).hexdigest() != first["sha256"].string_value:
        return Found(where, None, "its parts do not add up to the record they name")
    return Found(where, record)


def _order(found: Found) -> tuple[str, int, str]:
    record = found.record
    return (record.chain, record.sequence, "") if record else ("", 0, found.where)


def from_cloud_logging(project: str, log_id: str, endpoint: str | None) -> Iterator[Found]:
    from custos.cloud_logging.clients import close, logging_client

    client = logging_client(endpoint)
    try:
        entries = client.list_log_entries(
            request={
                "resource_names": [f"projects/{project}"],
                "filter": f'logName="{log_name(project, log_id)}"',
                "order_by": "timestamp asc",
                "page_size": 1000,
            }
        )
        return from_entries(iter(entries))
    finally:
        close(client)
