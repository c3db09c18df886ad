"""The writer's chain on a real spool directory, checked by `verify` as an auditor would:
a whole chain passes, and each kind of tampering is found and named."""

from __future__ import annotations

import asyncio
import errno
import os
from pathlib import Path

import pytest

from custos.audit.audit_pb2 import AuditRecord
from custos.audit.records import content_hash
from custos.audit.signing import generate_key_pair, load_public_keys
from custos.audit.sources import from_spool
from custos.audit.spool import SpoolError, frame, scan, segment_path, segments
from custos.audit.verify import verify
from custos.audit.writer import AuditWriter
from tests.audit.support import audit_config, exchange


async def write(config, count: int, close: bool = True) -> AuditWriter:  # type: ignore[no-untyped-def]
    writer = await AuditWriter.open(config, "extproc")
    await asyncio.gather(*(writer.record(exchange(f"req-{i}")) for i in range(count)))
    if close:
        await writer.close()
    return writer


def check(tmp_path: Path, live: bool = False):  # type: ignore[no-untyped-def]
    keys = load_public_keys([tmp_path / "audit.pub"])
    return verify(from_spool(tmp_path / "spool"), keys, live=live)


def only_segment(tmp_path: Path) -> Path:
    directory = tmp_path / "spool" / "extproc-test"
    (number,) = segments(directory)
    return segment_path(directory, number)


def frames(path: Path) -> list[bytes]:
    return [payload for _, payload in scan(path.read_bytes()).frames]


def rewrite(path: Path, payloads: list[bytes]) -> None:
    path.write_bytes(b"".join(frame(p) for p in payloads))


async def test_a_closed_chain_verifies(tmp_path: Path) -> None:
    await write(audit_config(tmp_path, checkpoint_every_records=10), 25)
    report = check(tmp_path)
    assert report.ok, report.findings
    (summary,) = report.chains.values()
    assert summary.exchanges == 25
    # 1 chain start + 25 exchanges + 2 checkpoints by count + 1 at shutdown
    assert (summary.records, summary.closed) == (29, True)
    assert summary.signed_through == 28


def chain_starts(tmp_path: Path) -> list[AuditRecord]:
    records = [AuditRecord.FromString(p) for p in frames(only_segment(tmp_path))]
    return [r for r in records if r.HasField("chain_start")]


async def test_a_restart_starts_a_chain_linked_to_the_last_head(tmp_path: Path) -> None:
    config = audit_config(tmp_path)
    first = await write(config, 3)
    second = await write(config, 2)
    assert second.chain != first.chain
    start = chain_starts(tmp_path)[1].chain_start
    assert (start.previous_chain, start.previous_sequence) == (first.chain, first.sequence)
    assert start.reason == "writer started again after a shutdown"
    report = check(tmp_path)
    assert report.ok, report.findings
    assert [s.exchanges for s in report.chains.values()] == [3, 2]


async def test_a_restart_after_a_cut_links_to_what_is_left(tmp_path: Path) -> None:
    # The second run's records are cut off while the writer is down. The next run starts
    # a chain from what is left (it cannot know better); the cut chain's copy in Cloud
    # Logging then shows two chains following the same head, which verify names.
    config = audit_config(tmp_path)
    first = await write(config, 3)
    kept = only_segment(tmp_path).read_bytes()
    await write(config, 2)
    only_segment(tmp_path).write_bytes(kept)
    await write(config, 1)
    start = chain_starts(tmp_path)[-1].chain_start
    assert (start.previous_chain, start.previous_sequence) == (first.chain, first.sequence)


async def test_a_crash_loses_no_record_and_the_next_chain_links_to_it(tmp_path: Path) -> None:
    config = audit_config(tmp_path)
    crashed = await write(config, 4, close=False)
    crashed._spool.close()  # the process is gone: no shutdown checkpoint
    assert not check(tmp_path).ok  # a chain that ends without its shutdown checkpoint
    await write(config, 1)
    assert "crash" in chain_starts(tmp_path)[1].chain_start.reason
    report = check(tmp_path)
    assert report.ok, report.findings
    assert [s.exchanges for s in report.chains.values()] == [4, 1]


async def test_an_unfinished_write_is_cut_off_and_a_new_chain_links_to_the_old(
    tmp_path: Path,
) -> None:
    config = audit_config(tmp_path)
    first = await write(config, 3)
    segment = only_segment(tmp_path)
    whole = segment.read_bytes()
    segment.write_bytes(whole + frame(b"x" * 40)[:20])  # a crash in the middle of a write
    second = await write(config, 1)
    assert second.chain != first.chain
    assert segment.read_bytes().startswith(whole)
    report = check(tmp_path)
    assert report.ok, report.findings
    start = chain_starts(tmp_path)[1].chain_start
    assert start.previous_chain == first.chain
    assert "20 bytes of an unfinished write cut off" in start.reason


async def test_damage_with_records_after_it_is_left_in_place(tmp_path: Path) -> None:
    config = audit_config(tmp_path)
    await write(config, 5)
    segment = only_segment(tmp_path)
    data = bytearray(segment.read_bytes())
    at = scan(bytes(data)).frames[3][0]
    data[at + 30] ^= 0x01  # one bit, in the middle of the newest segment
    segment.write_bytes(bytes(data))
    await write(config, 1)
    assert segment.read_bytes() == bytes(data)  # nothing after the damage was cut
    directory = segment.parent
    assert len(segments(directory)) == 2  # writing went on in a new segment
    newest = segment_path(directory, segments(directory)[-1])
    start = AuditRecord.FromString(frames(newest)[0]).chain_start
    assert "damaged bytes" in start.reason
    assert [f.kind for f in check(tmp_path).findings] == ["unreadable", "deleted"]


async def test_a_failed_write_starts_a_chain_from_what_is_on_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = await AuditWriter.open(audit_config(tmp_path), "extproc")
    await writer.record(exchange("kept"))
    synced = os.fdatasync

    def failing(fd: int) -> None:  # the disk's answer, once: an I/O error
        monkeypatch.setattr(os, "fdatasync", synced)
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "fdatasync", failing)
    with pytest.raises(SpoolError):
        await writer.record(exchange("lost"))
    assert writer.refuses  # no new exchange until the spool takes writes again
    await asyncio.sleep(0.05)  # the probe: a checkpoint, which now goes through
    assert not writer.refuses
    await writer.record(exchange("after"))
    await writer.close()
    report = check(tmp_path)
    assert report.ok, report.findings
    records = [AuditRecord.FromString(p) for p in frames(only_segment(tmp_path))]
    kept = [r.exchange.request_id for r in records if r.HasField("exchange")]
    assert kept == ["kept", "after"]
    assert "write failed" in chain_starts(tmp_path)[1].chain_start.reason


async def test_a_changed_byte_is_named(tmp_path: Path) -> None:
    await write(audit_config(tmp_path), 5)
    segment = only_segment(tmp_path)
    data = bytearray(segment.read_bytes())
    at = scan(bytes(data)).frames[3][0]
    data[at + 30] ^= 0x01
    segment.write_bytes(bytes(data))
    report = check(tmp_path)
    assert [f.kind for f in report.findings] == ["unreadable", "deleted"]
    assert f"@{at}" in report.findings[0].where


async def test_a_zeroed_block_is_named_once_not_read_as_records(tmp_path: Path) -> None:
    await write(audit_config(tmp_path), 5)
    segment = only_segment(tmp_path)
    data = bytearray(segment.read_bytes())
    at, after = (offset for offset, _ in scan(bytes(data)).frames[3:5])
    data[at + 20 : at + 84] = bytes(64)  # what a failing disk may give back for a block
    segment.write_bytes(bytes(data))
    report = check(tmp_path)
    assert [(f.kind, f.where) for f in report.findings] == [
        ("unreadable", f"extproc-test/{segment.name}@{at}"),
        ("deleted", f"extproc-test/{segment.name}@{after} (extproc-test #5)"),
    ]
    assert report.findings[0].message == f"{after - at} bytes that are not whole records"


async def test_a_record_changed_and_reframed_is_named(tmp_path: Path) -> None:
    await write(audit_config(tmp_path), 5)
    segment = only_segment(tmp_path)
    payloads = frames(segment)
    record = AuditRecord.FromString(payloads[2])
    record.exchange.status = 200 if record.exchange.status != 200 else 500
    payloads[2] = record.SerializeToString(deterministic=True)
    rewrite(segment, payloads)
    report = check(tmp_path)
    assert [(f.kind, "#3" in f.where) for f in report.findings] == [("modified", True)]


async def test_a_deleted_record_is_named(tmp_path: Path) -> None:
    await write(audit_config(tmp_path), 5)
    segment = only_segment(tmp_path)
    payloads = frames(segment)
    del payloads[2]
    rewrite(segment, payloads)
    report = check(tmp_path)
    assert [(f.kind, f.message) for f in report.findings] == [
        ("deleted", "records 3-3 are missing before it")
    ]


async def test_swapped_records_are_named(tmp_path: Path) -> None:
    await write(audit_config(tmp_path), 5)
    segment = only_segment(tmp_path)
    payloads = frames(segment)
    payloads[2], payloads[3] = payloads[3], payloads[2]
    rewrite(segment, payloads)
    kinds = [f.kind for f in check(tmp_path).findings]
    assert "reordered" in kinds


async def test_a_copied_record_is_named(tmp_path: Path) -> None:
    await write(audit_config(tmp_path), 5)
    segment = only_segment(tmp_path)
    payloads = frames(segment)
    payloads.insert(3, payloads[2])
    rewrite(segment, payloads)
    assert [f.kind for f in check(tmp_path).findings] == ["inserted"]


@pytest.mark.parametrize("cut", [1, 3])
async def test_a_cut_tail_is_named(tmp_path: Path, cut: int) -> None:
    await write(audit_config(tmp_path), 5)
    segment = only_segment(tmp_path)
    payloads = frames(segment)
    rewrite(segment, payloads[:-cut])
    (finding,) = check(tmp_path).findings
    assert finding.kind == "truncated"
    assert f"ends at sequence {len(payloads) - cut}" in finding.message
    # A writer still running has an open end; `live` says so without failing.
    assert check(tmp_path, live=True).ok


async def test_a_checkpoint_by_another_key_is_named(tmp_path: Path) -> None:
    await write(audit_config(tmp_path), 2)
    other = tmp_path / "other"
    other.mkdir()
    generate_key_pair(other / "k.pem", other / "k.pub")
    report = verify(from_spool(tmp_path / "spool"), load_public_keys([other / "k.pub"]))
    assert {f.kind for f in report.findings} == {"unsigned"}


async def test_a_forged_signature_is_named(tmp_path: Path) -> None:
    await write(audit_config(tmp_path), 2)
    segment = only_segment(tmp_path)
    payloads = frames(segment)
    record = AuditRecord.FromString(payloads[-1])
    record.checkpoint.signature = bytes(64)
    record.hash = content_hash(record)  # a forger can rehash, but cannot sign
    payloads[-1] = record.SerializeToString(deterministic=True)
    rewrite(segment, payloads)
    assert [(f.kind, f.message) for f in check(tmp_path).findings] == [
        ("modified", "its signature does not hold")
    ]


async def test_a_checkpoint_relabelled_shutdown_is_named(tmp_path: Path) -> None:
    # Cut the tail after a checkpoint by count and call that checkpoint a shutdown one.
    await write(audit_config(tmp_path, checkpoint_every_records=3), 5)
    segment = only_segment(tmp_path)
    payloads = frames(segment)
    cut = next(i for i, p in enumerate(payloads) if AuditRecord.FromString(p).checkpoint.reason)
    record = AuditRecord.FromString(payloads[cut])
    record.checkpoint.reason = "shutdown"
    record.hash = content_hash(record)
    rewrite(segment, [*payloads[:cut], record.SerializeToString(deterministic=True)])
    assert [(f.kind, f.message) for f in check(tmp_path).findings] == [
        ("modified", "its signature does not hold")
    ]
