"""Audit records: their canonical form, their hash, and the bodies they carry."""

from __future__ import annotations

import hashlib

from google.protobuf.message import DecodeError

from custos.audit.audit_pb2 import AuditRecord, Body

GENESIS_HASH = bytes(32)
# The range a protobuf Timestamp may hold (years 1 to 9999): outside it, reading the time
# (as nanoseconds, a datetime, RFC 3339) raises.
_MIN_SECONDS = -62_135_596_800
_MAX_SECONDS = 253_402_300_799
_MAX_NANOS = 999_999_999


def canonical(record: AuditRecord) -> bytes:
    """The bytes an entry's hash covers: its deterministic serialization, `hash` empty."""
    unsealed = AuditRecord()
    unsealed.CopyFrom(record)
    unsealed.ClearField("hash")
    return unsealed.SerializeToString(deterministic=True)


def content_hash(record: AuditRecord) -> bytes:
    return hashlib.sha256(canonical(record)).digest()


def record_id(chain: str, sequence: int) -> str:
    return f"{chain}-{sequence:012d}"


def body(data: bytes, keep: bool, max_bytes: int) -> Body:
    """`data` as a record keeps it: the size and digest of the whole and, when kept, its
    text up to `max_bytes` (a character cut in two at the end reads as U+FFFD)."""
    kept = data[:max_bytes] if keep else b""
    return Body(
        text=kept.decode("utf-8", errors="replace"),
        size=len(data),
        sha256=hashlib.sha256(data).digest(),
        truncated=len(kept) < len(data),
    )


def time_in_range(record: AuditRecord) -> bool:
    """Whether `record`'s time can be read: a record read from bytes or JSON someone else
    wrote may hold any seconds and nanos."""
    time = record.time
    return _MIN_SECONDS <= time.seconds <= _MAX_SECONDS and 0 <= time.nanos <= _MAX_NANOS


def parse(payload: bytes) -> AuditRecord | None:
    """A frame's payload as an audit record; None if it does not read as one."""
    try:
        return AuditRecord.FromString(payload)
    except DecodeError:
        return None


def is_record(payload: bytes) -> bool:
    """Whether a whole frame's payload reads as an audit record: after damage, reading goes
    on only from a frame that does, not from bytes that happen to look framed."""
    return parse(payload) is not None
