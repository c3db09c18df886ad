"""The writer's chain on a real spool directory, checked by `verify` as an auditor would:
a whole chain passes, and each kind of tampering is found and named."""

from __future__ import annotations

import asyncio
import datetime as dt
import errno
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from google.cloud.logging_v2.services.logging_service_v2 import LoggingServiceV2Client

from custos.audit.audit_pb2 import AuditRecord
from custos.audit.records import content_hash
from custos.audit.signing import generate_key_pair, load_public_keys
from custos.audit.sources import from_spool
from custos.audit.spool import SpoolError, frame, scan, segment_path, segments
from custos.audit.verify import Report, verify
from custos.audit.writer import AuditWriter
from custos.cli import main
from tests.audit.support import (
    appended,
    audit_config,
    exchange,
    framed,
    made_up_chain,
    only_segment,
    records_in,
    rewrite,
    sealed,
    shipper_for,
    spool_of,
    write,
)


def check(tmp_path: Path, live: bool = False, **options: Any) -> Report:
    keys = load_public_keys([tmp_path / "audit.pub"])
    return verify(from_spool(tmp_path / "spool"), keys, live=live, **options)


async def test_a_closed_chain_verifies(tmp_path: Path) -> None:
    await write(audit_config(tmp_path, checkpoint_every_records=10), 25)
    report = check(tmp_path)
    assert report.ok, report.findings
    (summary,) = report.chains.values()
    assert summary.exchanges == 25
    # 1 chain start + 25 exchanges + 2 checkpoints by count + 1 at shutdown
    assert (summary.records, summary.closed) == (29, True)
    assert summary.signed_through == 28


def chain_starts_in(directory: Path) -> list[AuditRecord]:
    return [r for r in records_in(directory) if r.HasField("chain_start")]


def chain_starts(tmp_path: Path) -> list[AuditRecord]:
    """The chain starts of a spool that must be one segment ending with a whole frame."""
    segment = only_segment(tmp_path)
    framed(segment)  # asserts the whole end
    return chain_starts_in(segment.parent)


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


async def test_two_chains_following_one_are_named(tmp_path: Path) -> None:
    # The cut above, seen where both the cut run and the next are (as in Cloud Logging,
    # which got the cut run before it was cut from the spool).
    config = audit_config(tmp_path)
    first = await write(config, 3)
    kept = only_segment(tmp_path).read_bytes()
    await write(config, 2)
    cut = only_segment(tmp_path).read_bytes()[len(kept) :]
    only_segment(tmp_path).write_bytes(kept)
    await write(config, 1)
    only_segment(tmp_path).write_bytes(only_segment(tmp_path).read_bytes() + cut)
    findings = check(tmp_path).findings
    assert [(f.kind, f.where) for f in findings] == [("deleted", f"chain {first.chain}")]
    assert "2 chains say they follow it" in findings[0].message


async def test_records_after_a_shutdown_checkpoint_are_named(tmp_path: Path) -> None:
    await write(audit_config(tmp_path), 2)
    segment = only_segment(tmp_path)
    payloads = framed(segment)
    shutdown = AuditRecord.FromString(payloads[-1])
    forged = AuditRecord()
    forged.CopyFrom(AuditRecord.FromString(payloads[-2]))  # an exchange, sealed anew
    forged.sequence, forged.previous_hash = shutdown.sequence + 1, shutdown.hash
    forged.record_id = f"{forged.chain}-{forged.sequence:012d}"
    forged.hash = content_hash(forged)
    rewrite(segment, [*payloads, forged.SerializeToString(deterministic=True)])
    kinds = [(f.kind, f.message) for f in check(tmp_path).findings]
    assert (
        "inserted",
        f"1 records after the chain's shutdown checkpoint (#{shutdown.sequence})",
    ) in kinds


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
    start = AuditRecord.FromString(framed(newest)[0]).chain_start
    assert "damaged bytes" in start.reason
    assert [f.kind for f in check(tmp_path).findings] == ["unreadable", "deleted"]


def fail_next_fdatasync(monkeypatch: pytest.MonkeyPatch) -> None:
    """The disk's answer to the next fdatasync, once: an I/O error."""
    synced = os.fdatasync

    def failing(fd: int) -> None:
        monkeypatch.setattr(os, "fdatasync", synced)
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "fdatasync", failing)


async def test_a_failed_write_starts_a_chain_from_what_is_on_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = await AuditWriter.open(audit_config(tmp_path), "extproc")
    await writer.record(exchange("kept"))
    fail_next_fdatasync(monkeypatch)
    with pytest.raises(SpoolError):
        await writer.record(exchange("lost"))
    assert writer.refuses  # no new exchange until the spool takes writes again
    await asyncio.sleep(0.05)  # the probe: a checkpoint, which now goes through
    assert not writer.refuses
    await writer.record(exchange("after"))
    await writer.close()
    report = check(tmp_path)
    assert report.ok, report.findings
    records = [AuditRecord.FromString(p) for p in framed(only_segment(tmp_path))]
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
    payloads = framed(segment)
    record = AuditRecord.FromString(payloads[2])
    record.exchange.status = 200 if record.exchange.status != 200 else 500
    payloads[2] = record.SerializeToString(deterministic=True)
    rewrite(segment, payloads)
    report = check(tmp_path)
    assert [(f.kind, "#3" in f.where) for f in report.findings] == [("modified", True)]


async def test_a_deleted_record_is_named(tmp_path: Path) -> None:
    await write(audit_config(tmp_path), 5)
    segment = only_segment(tmp_path)
    payloads = framed(segment)
    del payloads[2]
    rewrite(segment, payloads)
    report = check(tmp_path)
    assert [(f.kind, f.message) for f in report.findings] == [
        ("deleted", "records 3-3 are missing before it")
    ]


async def test_swapped_records_are_named(tmp_path: Path) -> None:
    await write(audit_config(tmp_path), 5)
    segment = only_segment(tmp_path)
    payloads = framed(segment)
    payloads[2], payloads[3] = payloads[3], payloads[2]
    rewrite(segment, payloads)
    kinds = [f.kind for f in check(tmp_path).findings]
    assert "reordered" in kinds


async def test_a_copied_record_is_named(tmp_path: Path) -> None:
    await write(audit_config(tmp_path), 5)
    segment = only_segment(tmp_path)
    payloads = framed(segment)
    payloads.insert(3, payloads[2])
    rewrite(segment, payloads)
    assert [f.kind for f in check(tmp_path).findings] == ["inserted"]


@pytest.mark.parametrize("cut", [1, 3])
async def test_a_cut_tail_is_named(tmp_path: Path, cut: int) -> None:
    await write(audit_config(tmp_path), 5)
    segment = only_segment(tmp_path)
    payloads = framed(segment)
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
    payloads = framed(segment)
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
    payloads = framed(segment)
    cut = next(i for i, p in enumerate(payloads) if AuditRecord.FromString(p).checkpoint.reason)
    record = AuditRecord.FromString(payloads[cut])
    record.checkpoint.reason = "shutdown"
    record.hash = content_hash(record)
    rewrite(segment, [*payloads[:cut], record.SerializeToString(deterministic=True)])
    assert [(f.kind, f.message) for f in check(tmp_path).findings] == [
        ("modified", "its signature does not hold")
    ]


def places(path: Path) -> list[str]:
    """Where verify names each frame of a segment: `<writer>/<segment>@<offset>`."""
    return [f"{path.parent.name}/{path.name}@{at}" for at, _ in scan(path.read_bytes()).frames]


def verify_command(tmp_path: Path, *options: str) -> list[str]:
    spool, key = tmp_path / "spool", tmp_path / "audit.pub"
    return ["audit", "verify", "--spool", str(spool), "--public-key", str(key), *options]


async def test_an_empty_set_is_a_finding(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    audit_config(tmp_path)  # the key pair
    (tmp_path / "spool").mkdir()
    assert [(f.kind, f.where) for f in check(tmp_path).findings] == [("missing", "the set")]
    assert main(verify_command(tmp_path)) == 1
    assert "FINDING missing: the set: it holds no audit record" in capsys.readouterr().out


async def test_a_writer_expected_but_without_a_chain_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await write(audit_config(tmp_path, writer="extauthz-test"), 2)
    await write(audit_config(tmp_path), 2)
    expect = ["--expect-writer", "extauthz-test", "--expect-writer", "extproc-test"]
    assert main(verify_command(tmp_path, *expect)) == 0
    # Deleting a writer's whole chain leaves nothing to find, but for the writer's name.
    for path in (tmp_path / "spool" / "extauthz-test").iterdir():
        path.unlink()
    (tmp_path / "spool" / "extauthz-test").rmdir()
    capsys.readouterr()
    assert main(verify_command(tmp_path)) == 0
    assert main(verify_command(tmp_path, *expect)) == 1
    findings = [line for line in capsys.readouterr().out.splitlines() if "FINDING" in line]
    assert findings == [
        "FINDING missing: writer extauthz-test: no chain of this writer is in the set: its "
        "records were deleted, or never written or shipped"
    ]


T0 = dt.datetime(2020, 3, 1, 9, 0, tzinfo=dt.UTC)  # long before the test runs


@pytest.mark.parametrize(("span", "young"), [(60, True), (181, False)])
async def test_live_a_made_up_chain_without_a_valid_signature_is_a_finding_once_old(
    tmp_path: Path, span: int, young: bool
) -> None:
    audit_config(tmp_path)
    times = [T0, T0 + dt.timedelta(seconds=span / 2), T0 + dt.timedelta(seconds=span)]
    forged = made_up_chain("extproc-forged", times)
    spool_of(tmp_path / "spool" / "extproc-forged", forged)

    report = check(tmp_path, live=True)

    # The set's newest record is the clock, not the wall: a set dated 2020 checks the same.
    (summary,) = report.chains.values()
    assert summary.signed_through == 0
    if young:  # a writer that started a minute ago may not have signed yet
        assert report.ok, report.findings
        assert "not signed yet: 3 records and no valid checkpoint" in report.notes[0]
        return
    (finding,) = report.findings
    assert (finding.kind, finding.where) == (
        "unsigned",
        "chain f0f0f0f0f0f0f0f0 (writer extproc-forged)",
    )
    assert finding.message.startswith(
        "no valid checkpoint signs any of its records, and its oldest "
        "(extproc-forged/000000000001.seg@0 (extproc-forged #1)) is 181.0 s older than the "
        "newest record of the set"
    )
    # The bound is the auditor's to set.
    assert check(tmp_path, live=True, max_unsigned_seconds=200).ok
    assert main([*verify_command(tmp_path, "--live"), "--max-unsigned-seconds", "200"]) == 0
    assert main(verify_command(tmp_path, "--live")) == 1


@pytest.mark.parametrize(("back", "young"), [(0, True), (3600, False)])
async def test_live_a_record_made_up_after_the_last_checkpoint_is_a_finding_once_old(
    tmp_path: Path, back: int, young: bool
) -> None:
    # A writer still running, its last record a checkpoint by count.
    running = await write(audit_config(tmp_path, checkpoint_every_records=4), 3, close=False)
    running._spool.close()
    segment = only_segment(tmp_path)
    payloads = framed(segment)
    last = AuditRecord.FromString(payloads[-1])
    assert last.checkpoint.reason == "count"
    when = last.time.ToDatetime(tzinfo=dt.UTC) - dt.timedelta(seconds=back)
    forged = appended(last, when, "made-up")
    rewrite(segment, [*payloads, forged.SerializeToString(deterministic=True)])

    report = check(tmp_path, live=True)

    if young:  # as new as the set's newest record: a write its writer has yet to sign
        assert report.ok, report.findings
        assert "not signed yet: 1 record since the last valid checkpoint" in report.notes[0]
        return
    (finding,) = report.findings
    assert finding.kind == "unsigned"
    assert f"(#{last.sequence})" in finding.message  # the last valid checkpoint
    assert f"{places(segment)[-1]} (extproc-test #{forged.sequence})" in finding.message
    assert "3600.0 s older than the newest record of the set" in finding.message


async def test_a_forged_copy_is_the_one_named_before_or_after_the_genuine_record(
    tmp_path: Path,
) -> None:
    await write(audit_config(tmp_path), 5)
    segment = only_segment(tmp_path)
    payloads = framed(segment)
    forged = AuditRecord.FromString(payloads[2])
    forged.exchange.principal.subject = "mallory"
    forged = sealed(forged).SerializeToString(deterministic=True)
    for before in (True, False):
        at = 2 if before else len(payloads)
        rewrite(segment, [*payloads[:at], forged, *payloads[at:]])
        report = check(tmp_path)
        assert [(f.kind, f.where, f.message) for f in report.findings] == [
            (
                "inserted",
                f"{places(segment)[at]} (extproc-test #3)",
                "one of 2 records numbered 3, and not one that links to the chain: #4 "
                "does not follow it",
            )
        ], before
        assert report.chains[AuditRecord.FromString(forged).chain].records == len(payloads)


async def test_two_forged_records_linked_to_each_other_are_both_named(tmp_path: Path) -> None:
    await write(audit_config(tmp_path), 5)
    segment = only_segment(tmp_path)
    payloads = framed(segment)
    third = AuditRecord.FromString(payloads[2])
    third.exchange.principal.subject = "mallory"
    fourth = AuditRecord.FromString(payloads[3])
    fourth.previous_hash = sealed(third).hash
    sealed(fourth)
    forged = [r.SerializeToString(deterministic=True) for r in (third, fourth)]
    rewrite(segment, [*payloads, *forged])
    report = check(tmp_path)
    named = places(segment)[len(payloads) :]
    assert [(f.kind, f.where) for f in report.findings] == [
        ("inserted", f"{named[1]} (extproc-test #4)"),
        ("inserted", f"{named[0]} (extproc-test #3)"),
    ]


async def test_a_record_changed_and_rehashed_is_named_with_the_record_after_it(
    tmp_path: Path,
) -> None:
    await write(audit_config(tmp_path), 5)
    segment = only_segment(tmp_path)
    payloads = framed(segment)
    record = AuditRecord.FromString(payloads[2])
    record.exchange.status = 500
    payloads[2] = sealed(record).SerializeToString(deterministic=True)
    rewrite(segment, payloads)
    where = places(segment)
    assert [(f.kind, f.where, f.message) for f in check(tmp_path).findings] == [
        (
            "modified",
            f"between {where[2]} (extproc-test #3) and {where[3]} (extproc-test #4)",
            "#4's previous hash is not the hash of #3: one of the two was changed and "
            "rehashed, or put in the place of the one written",
        )
    ]


@pytest.mark.parametrize("written", [5, 20], ids=["in-the-header", "in-the-payload"])
async def test_live_a_write_under_way_at_the_newest_segment_end_is_a_note(
    tmp_path: Path, written: int
) -> None:
    await write(audit_config(tmp_path), 3)
    segment = only_segment(tmp_path)
    size = segment.stat().st_size
    segment.write_bytes(segment.read_bytes() + frame(b"x" * 40)[:written])

    (finding,) = check(tmp_path).findings
    assert (finding.kind, finding.where) == ("unreadable", f"extproc-test/{segment.name}@{size}")
    assert "a write under way, or one a crash left unfinished" in finding.message
    report = check(tmp_path, live=True)
    assert report.ok, report.findings
    assert f"extproc-test/{segment.name}@{size}: {written} bytes" in report.notes[0]


async def test_live_damage_is_a_finding_elsewhere_than_a_frame_cut_short_at_the_newest_end(
    tmp_path: Path,
) -> None:
    config = audit_config(tmp_path, segment_bytes=4096)
    await write(config, 30)
    directory = config.spool_dir / "extproc-test"
    oldest, *_, newest = (segment_path(directory, n) for n in segments(directory))
    cut = frame(b"x" * 40)[:20]
    # A frame cut short in a segment its writer has left: never written again.
    oldest.write_bytes(oldest.read_bytes() + cut)
    assert [f.kind for f in check(tmp_path, live=True).findings] == ["unreadable"]
    oldest.write_bytes(oldest.read_bytes()[: -len(cut)])
    # Zeros at the newest end: no frame starts like that.
    newest.write_bytes(newest.read_bytes() + bytes(12))
    assert [f.kind for f in check(tmp_path, live=True).findings] == ["unreadable"]


async def test_an_idle_writers_chain_start_is_signed_on_time(tmp_path: Path) -> None:
    # ext_authz records only refusals: its writer may stay idle for hours after it starts.
    writer = await AuditWriter.open(audit_config(tmp_path, checkpoint_every_seconds=0.05), "x")
    await asyncio.sleep(0.2)
    records = [AuditRecord.FromString(p) for p in framed(only_segment(tmp_path))]
    assert [r.WhichOneof("body") for r in records[:2]] == ["chain_start", "checkpoint"]
    await writer.close()


async def test_a_cancelled_caller_does_not_leave_the_next_chain_a_stale_link(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = await AuditWriter.open(audit_config(tmp_path), "extproc")
    waiting = asyncio.create_task(writer.record(exchange("given-up")))
    await asyncio.sleep(0)  # queued in the spool...
    waiting.cancel()  # ...and Envoy gives up on the exchange: the record is written still
    await writer._spool.drain()
    fail_next_fdatasync(monkeypatch)
    with pytest.raises(SpoolError):
        await writer.record(exchange("lost"))
    await writer.record(exchange("after"))
    await writer.close()
    report = check(tmp_path)
    assert report.ok, report.findings


async def test_a_restart_after_the_shipper_pruned_links_to_the_last_record(
    tmp_path: Path, entries_api: LoggingServiceV2Client
) -> None:
    config = audit_config(tmp_path, segment_bytes=4096)
    crashed = await write(config, 12, close=False)
    crashed._spool.close()  # killed right after rolling to a new, still empty, segment
    directory = config.spool_dir / "extproc-test"
    empty = segment_path(directory, segments(directory)[-1] + 1)
    empty.touch()
    shipper_for(config, entries_api).ship_once()
    assert len(segments(directory)) == 2  # the one holding the last record is kept
    restarted = await write(config, 1)
    start = chain_starts_in(directory)[-1].chain_start
    assert (start.previous_chain, start.previous_sequence) == (crashed.chain, crashed.sequence)
    assert restarted.chain != crashed.chain


async def test_damage_in_an_older_segment_does_not_hide_the_last_record(tmp_path: Path) -> None:
    config = audit_config(tmp_path, segment_bytes=4096)
    crashed = await write(config, 12, close=False)
    crashed._spool.close()
    directory = config.spool_dir / "extproc-test"
    newest = segment_path(directory, segments(directory)[-1])
    data = bytearray(newest.read_bytes())
    data[scan(bytes(data)).frames[0][0] + 30] ^= 0x01  # the newest segment's first record
    newest.write_bytes(bytes(data))
    segment_path(directory, segments(directory)[-1] + 1).touch()  # then a roll, and a crash
    await write(config, 1)
    start = chain_starts_in(directory)[-1].chain_start
    assert (start.previous_chain, start.previous_sequence) == (crashed.chain, crashed.sequence)
    assert "damaged bytes" in start.reason


async def test_a_whole_run_deleted_from_the_middle_is_named(tmp_path: Path) -> None:
    config = audit_config(tmp_path)
    await write(config, 2)
    kept = only_segment(tmp_path).read_bytes()
    second = await write(config, 2)
    middle = only_segment(tmp_path).read_bytes()
    await write(config, 2)
    whole = only_segment(tmp_path).read_bytes()
    only_segment(tmp_path).write_bytes(kept + whole[len(middle) :])  # the second run, gone
    (finding,) = check(tmp_path).findings
    assert finding.kind == "deleted"
    assert f"follows chain {second.chain}, which is not here" in finding.message
    # The shipper's mark does not excuse it: the chain is not the writer's oldest left.
    (tmp_path / "spool" / "extproc-test" / "shipped").write_text("1 0\n")
    keys = load_public_keys([tmp_path / "audit.pub"])
    pruned = verify(from_spool(tmp_path / "spool"), keys, shipped_start=True)
    assert [f.kind for f in pruned.findings] == ["deleted"]


async def test_a_disk_without_room_for_a_record_refuses_even_when_a_probe_fits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = await AuditWriter.open(audit_config(tmp_path), "extproc")
    assert not writer.refuses
    room = shutil.disk_usage(tmp_path)._replace(free=100_000)  # a checkpoint fits, a body not
    monkeypatch.setattr(shutil, "disk_usage", lambda path: room)
    writer.measure_spool()
    assert writer.refuses
    await writer.close()
