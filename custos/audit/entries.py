"""Audit records as Cloud Logging entries, and back.

An entry's jsonPayload is the record's proto3 JSON form, so the console and log queries
read it field by field (`jsonPayload.exchange.principal.subject="alice"`); its insertId is
the record id, so a batch sent twice is kept once. A record too big for one entry (the API
takes 256 KiB) goes in numbered parts, each carrying a slice of the record's bytes.

Read back, every entry is checked against what `to_entries` writes for the record it
holds (payload, insertId, timestamp, labels), and parts are put together only from pieces
whose bytes hash to the digest they name: whoever may write to the log can add entries."""

from __future__ import annotations

import base64
import hashlib
import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from google.api import monitored_resource_pb2
from google.cloud.logging_v2.types import LogEntry
from google.logging.type import log_severity_pb2
from google.protobuf import json_format, struct_pb2, timestamp_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import DecodeError

from custos.audit.audit_pb2 import AuditRecord
from custos.audit.printable import printable
from custos.audit.records import time_in_range
from custos.audit.verify import Found
from custos.cloud_logging.resource_names import log_filter

# Under the API's 256 KiB per entry, with room for the entry's other fields.
MAX_ENTRY_BYTES = 240 * 1024
_PART_BYTES = 160 * 1024  # raw bytes per part: about 214 KiB once in base64
# Under the API's 10 MB per write request, with room for the request's own fields.
MAX_REQUEST_BYTES = 9_000_000
PART = "custos_part"
# No record of ours comes in more parts: that is some 160 MB, and bodies are capped far
# below. A part's count sizes what is built, so a larger one is not believed.
_MAX_PARTS = 1000
# Ways of putting a record's parts together tried, when injected parts share numbers
# with its own: each costs hashing the whole record.
_MAX_TRIES = 16
_LISTED = 10  # insert ids named in a finding about a group of parts
_RAW_ENTRY = LogEntry.pb()  # the google.logging.v2.LogEntry message class


def to_entries(record: AuditRecord, payload: bytes, name: str) -> list[LogEntry]:
    """`payload` is the record's bytes as spooled (its canonical form with the hash).

    Entries are built as the protobuf messages behind the client's types and wrapped, not
    converted: proto-plus marshals a Struct field by field, five times slower."""
    entry = _entry(record, record.record_id, name)
    entry.json_payload.update(_json_form(record))
    if entry.ByteSize() <= MAX_ENTRY_BYTES:
        return [LogEntry.wrap(entry)]
    slices = [payload[i : i + _PART_BYTES] for i in range(0, len(payload), _PART_BYTES)]
    digest = hashlib.sha256(payload).hexdigest()
    parts = []
    for index, piece in enumerate(slices, start=1):
        part = _entry(record, _part_id(record.record_id, index), name)
        part.json_payload.update(_part_form(record.record_id, index, len(slices), digest, piece))
        parts.append(LogEntry.wrap(part))
    return parts


def _json_form(record: AuditRecord) -> dict[str, Any]:
    return json_format.MessageToDict(record, preserving_proto_field_name=True)


def _part_form(record_id: str, index: int, count: int, digest: str, piece: bytes) -> dict[str, Any]:
    return {
        PART: {"record_id": record_id, "index": index, "count": count, "sha256": digest},
        "data": base64.b64encode(piece).decode(),
    }


def _part_id(record_id: str, index: int) -> str:
    return f"{record_id}.part{index}"


def _labels(record: AuditRecord) -> dict[str, str]:
    labels = {"writer": record.writer, "chain": record.chain}
    if record.HasField("exchange"):
        labels["request_id"] = record.exchange.request_id
    return labels


def _entry(record: AuditRecord, insert_id: str, name: str) -> Any:
    return _RAW_ENTRY(
        log_name=name,
        resource=monitored_resource_pb2.MonitoredResource(type="global"),
        timestamp=record.time,
        insert_id=insert_id,
        severity=log_severity_pb2.NOTICE,
        labels=_labels(record),
    )


@dataclass(frozen=True)
class _Part:
    """One entry that says it holds a slice of a record's bytes."""

    where: str
    insert_id: str
    index: int
    piece: bytes
    entry: Any  # the google.logging.v2.LogEntry message


_Key = tuple[str, str, int]  # the record id, sha256 and count a part names


def from_entries(entries: Iterator[LogEntry]) -> Iterator[Found]:
    """Records from entries (parts put back together), in chain order: entries are listed
    by timestamp, and a wall clock may step back. Anyone who may write to the log can add
    entries, so nothing read from one is trusted before it is checked: an entry that is
    not a record, or not the entry its record is written as, is named (never quoted: it
    can hold PHI) as a place with a problem."""
    found: list[Found] = []
    groups: dict[_Key, list[_Part]] = {}
    for entry in entries:
        raw = LogEntry.pb(entry)
        where = f"entry {printable(raw.insert_id)}"
        if PART not in raw.json_payload.fields:
            found.extend(_parsed(where, raw))
            continue
        part = _part(where, raw)
        if isinstance(part, str):
            found.append(Found(where, None, part))
        else:
            groups.setdefault(part[0], []).append(part[1])
    for key, parts in groups.items():
        found.extend(_joined(key, parts))
    return iter(sorted(found, key=_order))


def _parsed(where: str, entry: Any) -> list[Found]:
    """The record an entry holds whole, and a problem if the entry is not the one
    `to_entries` writes for it: the record is still checked on its own (its hash and
    links say whether it is genuine), but what the console and log queries show of it
    (the payload, the labels) or where they file it (insertId, timestamp) was changed."""
    record = AuditRecord()
    value = json_format.MessageToDict(entry.json_payload)
    try:
        json_format.ParseDict(value, record)
    except json_format.ParseError:
        # Not the error's text: it quotes the value, and a value can be PHI.
        why = _misfit(value, AuditRecord.DESCRIPTOR, "jsonPayload")
        return [Found(where, None, f"not an audit record: {why or 'its JSON is not one'}")]
    if not time_in_range(record):
        return [Found(where, None, "a record whose time is out of range")]
    written = struct_pb2.Struct()
    written.update(_json_form(record))
    return [Found(where, record), *_unlike(where, entry, record, record.record_id, written)]


def _unlike(
    where: str, entry: Any, record: AuditRecord, insert_id: str, payload: struct_pb2.Struct
) -> list[Found]:
    """A problem naming the fields of `entry` that are not what `to_entries` writes for
    `record`. A payload that parses to the record is not enough: a field spelled twice
    (`requestId` next to `request_id`) parses to one value while the console shows the
    other, and a number written as JSON can read back as the record's string."""
    differ = [
        name
        for name, same in (
            ("jsonPayload", entry.json_payload == payload),
            ("insertId", entry.insert_id == insert_id),
            ("timestamp", entry.timestamp == record.time),
            ("labels", dict(entry.labels) == _labels(record)),
        )
        if not same
    ]
    if not differ:
        return []
    return [
        Found(
            where,
            None,
            f"the entry is not the one its record is written as: its {', '.join(differ)} "
            f"{'differs' if len(differ) == 1 else 'differ'} (changed after it was written, "
            "or made up)",
        )
    ]


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


def _part(where: str, entry: Any) -> tuple[_Key, _Part] | str:
    """A part's group and slice, or why the entry is not a part of ours."""
    payload = entry.json_payload.fields
    header = payload[PART]
    if header.WhichOneof("kind") != "struct_value":
        return "a record part whose header is not an object"
    fields = header.struct_value.fields
    record_id, digest = _string(fields, "record_id"), _string(fields, "sha256")
    index, count = _part_number(fields, "index"), _part_number(fields, "count")
    if record_id is None or digest is None:
        return "a record part whose header does not name a record id and a digest"
    if index is None or count is None or index > count:
        return (
            "a record part whose number or count is not a whole number from 1 to "
            f"{_MAX_PARTS}, or whose number is over its count"
        )
    piece = _base64(_string(payload, "data"))
    if piece is None:
        return "a record part without its data in base64"
    return (record_id, digest, count), _Part(where, entry.insert_id, index, piece, entry)


def _base64(text: str | None) -> bytes | None:
    if text is None:
        return None
    try:
        return base64.b64decode(text, validate=True)
    except ValueError:
        return None


def _string(fields: Any, name: str) -> str | None:
    value = fields.get(name)
    if value is None or value.WhichOneof("kind") != "string_value":
        return None
    return value.string_value


def _part_number(fields: Any, name: str) -> int | None:
    """A part's number or count: JSON has only doubles, and a count is trusted to size
    what is built, so NaN, infinities, fractions and counts no record of ours reaches
    are refused."""
    value = fields.get(name)
    if value is None or value.WhichOneof("kind") != "number_value":
        return None
    number = value.number_value
    if not 1 <= number <= _MAX_PARTS or not number.is_integer():  # NaN fails both
        return None
    return int(number)


def _joined(key: _Key, parts: list[_Part]) -> list[Found]:
    """The record a group of parts makes, if any, and a problem for each part not its own.

    Parts are grouped by what they name (record id, digest, count), and every candidate
    for a number is kept: an injected part that names a genuine record's id, digest and
    count and a number it has must not replace the genuine one. The record is made of
    the candidates whose bytes hash to the digest."""
    record_id, digest, count = key
    where = f"entry {printable(record_id)}.part*"
    named = f"{where} ({_ids(parts)})"
    # By number, each different piece once, in the order read: an exact copy is no other
    # choice (a dict, not a list: many injected copies cost no comparisons of every pair).
    candidates: dict[int, dict[bytes, None]] = {}
    for part in parts:
        candidates.setdefault(part.index, {})[part.piece] = None
    if len(candidates) < count:  # every number is from 1 to count
        return [Found(named, None, f"{count - len(candidates)} of its {count} parts are missing")]
    chosen = _matching(digest, [list(candidates[i]) for i in range(1, count + 1)])
    if isinstance(chosen, str):
        return [Found(named, None, chosen)]
    try:
        record = AuditRecord.FromString(b"".join(chosen))
    except DecodeError:
        return [Found(named, None, "its parts do not make an audit record")]
    if record.record_id != record_id:
        return [Found(named, None, "its parts make a record other than the one they name")]
    if not time_in_range(record):
        return [Found(named, None, "its parts make a record whose time is out of range")]
    found = [Found(where, record)]
    for part in parts:
        if part.piece != chosen[part.index - 1]:
            found.append(
                Found(
                    part.where,
                    None,
                    f"a part numbered {part.index} of a record its bytes are not part of: "
                    "put there, not written with the record",
                )
            )
            continue
        written = struct_pb2.Struct()
        written.update(_part_form(record_id, part.index, count, digest, part.piece))
        found += _unlike(part.where, part.entry, record, _part_id(record_id, part.index), written)
    return found


def _matching(digest: str, candidates: list[list[bytes]]) -> list[bytes] | str:
    """One piece per part number, the pieces hashing to `digest`; or why there are none.
    Only injected parts give a number several candidates, so a few ways are tried, never
    every one: the ways multiply with each number that has several."""
    for pieces in itertools.islice(itertools.product(*candidates), _MAX_TRIES):
        if hashlib.sha256(b"".join(pieces)).hexdigest() == digest:
            return list(pieces)
    ways = math.prod(len(c) for c in candidates)
    if ways > _MAX_TRIES:
        return (
            f"its parts go together {ways} ways, too many to try (the first {_MAX_TRIES} "
            "do not add up to the record they name)"
        )
    return "its parts do not add up to the record they name"


def _ids(parts: list[_Part]) -> str:
    """The insert ids of a group's entries, for a finding: the first few."""
    ids = [printable(part.insert_id) for part in parts[:_LISTED]]
    more = f" and {len(parts) - _LISTED} more" if len(parts) > _LISTED else ""
    return "entries " + ", ".join(ids) + more


def _order(found: Found) -> tuple[str, int, str]:
    record = found.record
    return (record.chain, record.sequence, "") if record else ("", 0, found.where)


def from_cloud_logging(project: str, log_id: str, endpoint: str | None) -> Iterator[Found]:
    from custos.cloud_logging.clients import logging_client

    with logging_client(endpoint) as client:
        entries = client.list_log_entries(
            request={
                "resource_names": [f"projects/{project}"],
                "filter": log_filter(project, log_id),
                "order_by": "timestamp asc",
                "page_size": 1000,
            }
        )
        return from_entries(iter(entries))
