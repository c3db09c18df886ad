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
from google.protobuf import json_format, struct_pb2, timestamp_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor
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
    value = json_format.MessageToDict(payload)
    try:
        json_format.ParseDict(value, record)
    except json_format.ParseError:
        # Not the error's text: it quotes the value, and a value can be PHI.
        why = _misfit(value, AuditRecord.DESCRIPTOR, "jsonPayload")
        return Found(where, None, f"not an audit record: {why or 'its JSON is not one'}")
    return Found(where, record)


def _misfit(value: object, message: Descriptor, path: str) -> str | None:
    """Where `value`, a message's proto3 JSON form, does not fit `message`: the field's
    path and the kind of JSON value it holds. Never the value, nor the name of a field the
    message does not have: either can be anything, PHI included."""
    if message.full_name == "google.protobuf.Timestamp":
        return None if _is_time(value) else f"{path} is {_kind(value)}, not an RFC 3339 time"
    if not isinstance(value, dict):
        return f"{path} is {_kind(value)}, not an object"
    for key, item in value.items():
        field = message.fields_by_camelcase_name.get(key) or message.fields_by_name.get(key)
        if field is None:
            return f"{path} has a field that {message.name} does not have"
        found = _field_misfit(item, field, f"{path}.{field.name}")
        if found:
            return found
    return None


def _field_misfit(value: object, field: FieldDescriptor, path: str) -> str | None:
    if value is None:  # proto3 JSON: null is the field's default
        return None
    if not field.is_repeated:
        return _one_misfit(value, field, path)
    entry = field.message_type
    if entry is not None and entry.GetOptions().map_entry:
        if not isinstance(value, dict):
            return f"{path} is {_kind(value)}, not an object"
        items, field = list(value.values()), entry.fields_by_name["value"]
    elif isinstance(value, list):
        items = value
    else:
        return f"{path} is {_kind(value)}, not a list"
    return next(filter(None, (_one_misfit(v, field, f"{path}[]") for v in items)), None)


def _one_misfit(value: object, field: FieldDescriptor, path: str) -> str | None:
    if field.message_type is not None:
        return _misfit(value, field.message_type, path)
    wanted, fits = _SCALARS.get(field.cpp_type, ("a value", lambda v: True))
    return None if fits(value) else f"{path} is {_kind(value)}, not {wanted}"


def _is_integer(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, float):
        return value.is_integer()
    if isinstance(value, str):  # proto3 JSON writes 64-bit integers as strings
        return value.lstrip("-").isdigit()
    return isinstance(value, int)


def _is_time(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        timestamp_pb2.Timestamp().FromJsonString(value)
    except ValueError:
        return False
    return True


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return {str: "a string", list: "a list", dict: "an object"}.get(type(value), "a value")


_INTEGER = ("an integer", _is_integer)
_COUNT = ("an integer of 0 or more", lambda v: _is_integer(v) and not str(v).startswith("-"))
_SCALARS = {
    FieldDescriptor.CPPTYPE_STRING: ("a string", lambda v: isinstance(v, str)),  # bytes too
    FieldDescriptor.CPPTYPE_BOOL: ("a boolean", lambda v: isinstance(v, bool)),
    FieldDescriptor.CPPTYPE_INT32: _INTEGER,
    FieldDescriptor.CPPTYPE_INT64: _INTEGER,
    FieldDescriptor.CPPTYPE_UINT32: _COUNT,
    FieldDescriptor.CPPTYPE_UINT64: _COUNT,
}


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
