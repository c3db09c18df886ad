"""Entries someone with write access to the audit log added or altered, read back by
`custos audit verify --project` and `replay --project` as an auditor runs them (the real
client library against the emulator): each is named as a finding, never quoted (it can
hold PHI), never a traceback or a run out of memory, and the genuine records still
verify. What verify and replay print of a record or an entry is escaped."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from google.cloud.logging_v2.services.logging_service_v2 import LoggingServiceV2Client
from google.cloud.logging_v2.types import LogEntry
from google.protobuf import json_format

from custos.audit.audit_pb2 import AuditRecord
from custos.audit.entries import PART, to_entries
from custos.cli import main
from custos.cloud_logging.emulator import Emulator
from tests.audit.support import (
    BIG_BODIES,
    LOG,
    PROJECT,
    appended,
    audit_config,
    made_up_chain,
    sealed,
    shipper_for,
    spool_of,
    spooled,
    write,
    write_big,
)

PHI = "123-45-6789"
Captured = pytest.CaptureFixture[str]


def audit(tmp_path: Path, emulator: Emulator, verb: str, *options: str) -> int:
    command = ["audit", verb, "--project", PROJECT, "--endpoint", emulator.endpoint]
    return main([*command, "--public-key", str(tmp_path / "audit.pub"), *options])


def verify_spool(tmp_path: Path) -> int:
    audit_config(tmp_path)  # the key pair
    spool = str(tmp_path / "spool")
    return main(["audit", "verify", "--spool", spool, "--public-key", str(tmp_path / "audit.pub")])


def findings(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith("FINDING")]


def inject(entries_api: LoggingServiceV2Client, *entries: dict[str, Any] | LogEntry) -> None:
    """Entries written to the audit log by someone other than the shipper."""
    entries_api.write_log_entries(
        request={"log_name": LOG, "resource": {"type": "global"}, "entries": list(entries)}
    )


def part(insert_id: str, header: dict[str, Any], data: bytes = b"x") -> dict[str, Any]:
    payload = {PART: header, "data": base64.b64encode(data).decode()}
    return {"insert_id": insert_id, "json_payload": payload}


async def shipped(tmp_path: Path, entries_api: LoggingServiceV2Client) -> list[AuditRecord]:
    """Two exchanges, shipped as the shipper ships them: the genuine set to tamper with."""
    config = audit_config(tmp_path)
    await write(config, 2)
    shipper_for(config, entries_api).ship_once()
    return spooled(config)


async def shipped_big(tmp_path: Path, entries_api: LoggingServiceV2Client) -> AuditRecord:
    """A set whose one exchange is too big for an entry (four parts); that record."""
    config = audit_config(tmp_path, bodies=BIG_BODIES)
    await write_big(config, "req-big")
    shipper_for(config, entries_api).ship_once()
    return spooled(config)[1]


NOT_A_PART = (
    "a record part whose number or count is not a whole number from 1 to 1000, or whose "
    "number is over its count"
)


@pytest.mark.parametrize(
    "header",
    [
        {"count": math.inf},  # int() of it raised OverflowError
        {"count": math.nan},  # ... ValueError
        {"index": math.nan},
        {"count": 3e9},  # a list of three billion part numbers: MemoryError
        {"count": 1001},
        {"index": 1.5},
        {"index": 0},
        {"index": 2, "count": 1},
        {"count": -1},
    ],
    ids=[
        "count-inf",
        "count-nan",
        "index-nan",
        "count-3e9",
        "count-1001",
        "index-1.5",
        "index-0",
        "index-over-count",
        "count-negative",
    ],
)
async def test_a_part_with_an_impossible_number_or_count_is_unreadable(
    tmp_path: Path,
    emulator: Emulator,
    entries_api: LoggingServiceV2Client,
    capsys: Captured,
    header: dict[str, Any],
) -> None:
    records = await shipped(tmp_path, entries_api)
    named = {"record_id": records[1].record_id, "index": 1, "count": 1, "sha256": "0" * 64}
    inject(entries_api, part("injected", named | header))

    assert audit(tmp_path, emulator, "verify") == 1
    out, _ = capsys.readouterr()
    assert findings(out) == [f"FINDING unreadable: entry injected: {NOT_A_PART}"]

    assert audit(tmp_path, emulator, "replay") == 0
    out, err = capsys.readouterr()
    assert "req-0" in out and "req-1" in out
    assert "NOT VERIFIED" not in out + err  # the genuine records all verify


@pytest.mark.parametrize(
    ("payload", "said"),
    [
        ({PART: "not an object", "data": "eA=="}, "a record part whose header is not an object"),
        (
            {PART: {"index": 1, "count": 1, "sha256": "0" * 64}, "data": "eA=="},
            "a record part whose header does not name a record id and a digest",
        ),
        (
            {PART: {"record_id": "r", "index": 1, "count": 1, "sha256": "0" * 64}},
            "a record part without its data in base64",
        ),
        (
            {PART: {"record_id": "r", "index": 1, "count": 1, "sha256": "0"}, "data": PHI},
            "a record part without its data in base64",
        ),
    ],
    ids=["header-not-an-object", "no-record-id", "no-data", "data-not-base64"],
)
async def test_a_part_without_what_a_part_holds_is_unreadable(
    tmp_path: Path,
    emulator: Emulator,
    entries_api: LoggingServiceV2Client,
    capsys: Captured,
    payload: dict[str, Any],
    said: str,
) -> None:
    await shipped(tmp_path, entries_api)
    inject(entries_api, {"insert_id": "injected", "json_payload": payload})

    assert audit(tmp_path, emulator, "verify") == 1
    out, err = capsys.readouterr()
    assert findings(out) == [f"FINDING unreadable: entry injected: {said}"]
    assert PHI not in out + err


async def test_a_record_from_parts_with_a_time_out_of_range_is_unreadable(
    tmp_path: Path, emulator: Emulator, entries_api: LoggingServiceV2Client, capsys: Captured
) -> None:
    """Reading such a time raises (as nanoseconds, a datetime, RFC 3339): verify and
    replay stopped on a traceback."""
    records = await shipped(tmp_path, entries_api)
    forged = AuditRecord()
    forged.CopyFrom(records[1])
    forged.time.seconds = 10**13
    data = sealed(forged).SerializeToString(deterministic=True)
    named = {"record_id": forged.record_id, "index": 1, "count": 1}
    inject(
        entries_api, part("injected", named | {"sha256": hashlib.sha256(data).hexdigest()}, data)
    )

    assert audit(tmp_path, emulator, "verify") == 1
    out, _ = capsys.readouterr()
    assert findings(out) == [
        f"FINDING unreadable: entry {forged.record_id}.part* (entries injected): its parts "
        "make a record whose time is out of range"
    ]
    assert audit(tmp_path, emulator, "replay") == 0
    assert "NOT VERIFIED" not in capsys.readouterr().out


async def test_a_spooled_record_with_a_time_out_of_range_is_unreadable(
    tmp_path: Path, capsys: Captured
) -> None:
    start = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    records = made_up_chain("extproc-test", [start, start + dt.timedelta(seconds=1)])
    records[1].time.seconds = 10**13  # the last record: resealing it breaks no link
    spool_of(tmp_path / "spool" / "extproc-test", [records[0], sealed(records[1])])

    assert verify_spool(tmp_path) == 1
    out, _ = capsys.readouterr()
    assert "FINDING unreadable: extproc-test/" in out
    assert ": a record whose time is out of range" in out
    assert main(["audit", "replay", "--spool", str(tmp_path / "spool")]) == 0
    assert capsys.readouterr().out == ""  # the chain start is no exchange; the other unread


async def test_an_injected_part_does_not_replace_the_genuine_one(
    tmp_path: Path, emulator: Emulator, entries_api: LoggingServiceV2Client, capsys: Captured
) -> None:
    """Parts were kept by record id and number, the last read winning: one injected part
    with the genuine id, digest, count and number, listed after the genuine one, made the
    genuine record unreadable (and then missing from its chain)."""
    big = await shipped_big(tmp_path, entries_api)
    second = next(e for e in emulator.entries(LOG) if e.insert_id == f"{big.record_id}.part2")
    header = json_format.MessageToDict(LogEntry.pb(second).json_payload)[PART]
    size = len(base64.b64decode(LogEntry.pb(second).json_payload["data"]))
    # Same insert id, a later timestamp: Cloud Logging keeps both.
    inject(entries_api, part(f"{big.record_id}.part2", header, PHI.encode() * (size // 11)))
    # ... and a part naming the record with another digest: a group of its own.
    inject(entries_api, part("stray", header | {"index": 1, "sha256": "f" * 64}))

    assert audit(tmp_path, emulator, "verify") == 1
    out, err = capsys.readouterr()
    assert sorted(findings(out)) == [
        f"FINDING unreadable: entry {big.record_id}.part* (entries stray): 3 of its 4 parts "
        "are missing",
        f"FINDING unreadable: entry {big.record_id}.part2: a part numbered 2 of a record its "
        "bytes are not part of: put there, not written with the record",
    ]
    assert "1 exchanges" in out and "closed" in out  # the chain is whole
    assert PHI not in out + err

    assert audit(tmp_path, emulator, "replay", "--request-id", "req-big") == 0
    out, err = capsys.readouterr()
    assert out.startswith(big.time.ToJsonString())  # shown, and not marked NOT VERIFIED
    assert "NOT VERIFIED" not in out + err


async def test_several_injected_candidates_for_each_part_are_not_all_tried(
    tmp_path: Path, emulator: Emulator, entries_api: LoggingServiceV2Client, capsys: Captured
) -> None:
    """Each number with several candidates multiplies the ways to put a record together:
    a few are tried, then the record is named unreadable, not hashed forever."""
    big = await shipped_big(tmp_path, entries_api)
    genuine = [e for e in emulator.entries(LOG) if e.insert_id.startswith(big.record_id)]
    header = json_format.MessageToDict(LogEntry.pb(genuine[0]).json_payload)[PART]
    # Two more candidates for each number (3^4 = 81 ways), listed before the genuine ones.
    earlier = {"seconds": big.time.seconds - 60}
    for index in range(1, 5):
        for n in range(2):
            fake = part(f"fake-{index}-{n}", header | {"index": index}, bytes([n]) * 1000)
            inject(entries_api, fake | {"timestamp": earlier})

    assert audit(tmp_path, emulator, "verify") == 1
    out, _ = capsys.readouterr()
    (said,) = [f for f in findings(out) if "too many to try" in f]
    assert said.startswith(f"FINDING unreadable: entry {big.record_id}.part* (entries ")
    assert "its parts go together 81 ways, too many to try" in said


def spelled_twice(entry: Any) -> None:
    """`requestId` with the record's value next to `request_id` with a made-up one."""
    fields = entry.json_payload.fields["exchange"].struct_value.fields
    fields["requestId"].string_value = fields["request_id"].string_value
    fields["request_id"].string_value = PHI


def number_unquoted(entry: Any) -> None:
    """A 64-bit integer as a JSON number: proto3 JSON writes it as a string."""
    fields = entry.json_payload.fields
    fields["sequence"].number_value = float(fields["sequence"].string_value)


def labelled(entry: Any) -> None:
    entry.labels["writer"] = PHI


def stamped_later(entry: Any) -> None:
    entry.timestamp.seconds += 3600


def renamed(entry: Any) -> None:
    entry.insert_id = "elsewhere"


@pytest.mark.parametrize(
    ("alter", "field"),
    [
        (number_unquoted, "jsonPayload"),
        (labelled, "labels"),
        (stamped_later, "timestamp"),
        (renamed, "insertId"),
    ],
    ids=["a-number-unquoted", "labels", "timestamp", "insert-id"],
)
async def test_an_entry_that_is_not_the_one_its_record_is_written_as_is_named(
    tmp_path: Path,
    emulator: Emulator,
    entries_api: LoggingServiceV2Client,
    capsys: Captured,
    alter: Callable[[Any], None],
    field: str,
) -> None:
    """In the log instead of the entry the shipper writes (the record itself unchanged):
    it parsed to the genuine record, so it verified."""
    config = audit_config(tmp_path)
    await write(config, 2)
    records = spooled(config)
    entries = [e for r in records for e in to_entries(r, r.SerializeToString(), LOG)]
    alter(LogEntry.pb(entries[1]))
    inject(entries_api, *entries)

    assert audit(tmp_path, emulator, "verify") == 1
    out, err = capsys.readouterr()
    assert findings(out) == [
        f"FINDING unreadable: entry {LogEntry.pb(entries[1]).insert_id}: the entry is not the "
        f"one its record is written as: its {field} differs (changed after it was written, "
        "or made up)"
    ]
    assert "2 exchanges" in out and "closed" in out  # the record is still in its chain
    assert PHI not in out + err


async def test_a_field_spelled_twice_is_named_whichever_spelling_is_read(
    tmp_path: Path, emulator: Emulator, entries_api: LoggingServiceV2Client, capsys: Captured
) -> None:
    """The payload parses to one of the two values while the console and log queries
    show the other. Which one depends on the order of the payload's keys, which is not
    fixed: the record's own value verified, so nothing was found; the made-up one only
    fails the record's hash."""
    config = audit_config(tmp_path)
    await write(config, 2)
    records = spooled(config)
    entries = [e for r in records for e in to_entries(r, r.SerializeToString(), LOG)]
    spelled_twice(LogEntry.pb(entries[1]))
    inject(entries_api, *entries)

    assert audit(tmp_path, emulator, "verify") == 1
    out, err = capsys.readouterr()
    where = f"entry {records[1].record_id}"
    named = f"FINDING unreadable: {where}: the entry is not the one its record is written as: "
    (said,) = [f for f in findings(out) if f.startswith(named)]
    assert said.startswith(f"{named}its jsonPayload")
    others = [f for f in findings(out) if f != said]
    hash_fails = f"FINDING modified: {where} (extproc-test #2): its content does not match its hash"
    assert others in ([], [hash_fails])
    assert "2 exchanges" in out and "closed" in out
    assert PHI not in out + err


async def test_a_part_that_is_not_the_one_its_record_is_written_as_is_named(
    tmp_path: Path, emulator: Emulator, entries_api: LoggingServiceV2Client, capsys: Captured
) -> None:
    config = audit_config(tmp_path, bodies=BIG_BODIES)
    await write_big(config, "req-big")
    records = spooled(config)
    entries = [e for r in records for e in to_entries(r, r.SerializeToString(), LOG)]
    third = LogEntry.pb(entries[3])
    assert third.insert_id == f"{records[1].record_id}.part3"
    third.labels["request_id"] = PHI
    third.json_payload.fields["note"].string_value = PHI
    inject(entries_api, *entries[:3])
    inject(entries_api, *entries[3:])

    assert audit(tmp_path, emulator, "verify") == 1
    out, err = capsys.readouterr()
    assert findings(out) == [
        f"FINDING unreadable: entry {third.insert_id}: the entry is not the one its record is "
        "written as: its jsonPayload, labels differ (changed after it was written, or made up)"
    ]
    assert PHI not in out + err


def hostile_spool(tmp_path: Path) -> None:
    """A made-up chain whose writer name and bodies hold newlines and terminal escapes,
    made to print lines that look like the tools' own."""
    start = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    writer = "w\nverified: no findings\x1b[2J"
    (first,) = made_up_chain(writer, [start])
    record = appended(first, start + dt.timedelta(seconds=1), "req-1\n  request forged")
    record.exchange.request.text = '{"id":1}\n2025-01-01T00:00:09Z  mallory\x1b[31m\u202e'
    record.exchange.response.text = "fine\r\n  < (empty)"
    spool_of(tmp_path / "spool" / "extproc-test", [first, sealed(record)])


async def test_replay_text_escapes_what_records_hold(tmp_path: Path, capsys: Captured) -> None:
    hostile_spool(tmp_path)

    assert main(["audit", "replay", "--spool", str(tmp_path / "spool")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 5  # one exchange: its header, request, decision, > and < lines
    assert lines[1].startswith("  request req-1\\n  request forged  session")
    assert lines[3] == '  > {"id":1}\\n2025-01-01T00:00:09Z  mallory\\x1b[31m\\u202e'
    assert lines[4] == "  < fine\\r\\n  < (empty)"

    assert main(["audit", "replay", "--spool", str(tmp_path / "spool"), "--json"]) == 0
    assert "\x1b" not in capsys.readouterr().out  # JSON escapes them itself


async def test_verify_output_escapes_writers_chains_and_insert_ids(
    tmp_path: Path, emulator: Emulator, entries_api: LoggingServiceV2Client, capsys: Captured
) -> None:
    hostile_spool(tmp_path)
    assert verify_spool(tmp_path) == 1
    out, _ = capsys.readouterr()
    assert "\x1b" not in out
    assert "verified: no findings" not in out.splitlines()
    assert "chain f0f0f0f0f0f0f0f0 (writer w\\nverified: no findings\\x1b[2J)" in out

    await shipped(tmp_path, entries_api)
    inject(entries_api, {"insert_id": "x\nverified: no findings", "json_payload": {"a": 1}})
    assert audit(tmp_path, emulator, "verify") == 1
    out, _ = capsys.readouterr()
    assert "verified: no findings" not in out.splitlines()
    assert "FINDING unreadable: entry x\\nverified: no findings: not an audit record" in out
