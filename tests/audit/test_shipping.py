"""The shipper, with the real client library against the local Logging API and real spools
written by `AuditWriter`: what a writer spooled reaches Cloud Logging once per record and
verifies there; the mark moves only past what was accepted or set aside; transient errors
are retried, refused records and damaged bytes go to quarantine, and nothing is dropped."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.cloud.logging_v2.services.logging_service_v2 import LoggingServiceV2Client

from custos.audit.audit_pb2 import AuditRecord
from custos.audit.config import AuditConfig
from custos.audit.entries import from_entries
from custos.audit.quarantine import QUARANTINE
from custos.audit.signing import load_public_keys
from custos.audit.spool import (
    COMMITTED,
    SHIPPED,
    Mark,
    frame,
    read_mark,
    scan,
    segment_path,
    segments,
)
from custos.audit.verify import Found, Report, verify
from custos.cli import main
from custos.cloud_logging.emulator import Emulator
from tests.audit.support import (
    BIG_BODIES,
    LOG,
    PROJECT,
    WRITER,
    audit_config,
    framed,
    shipper_for,
    spooled,
    write,
    write_big,
)

PHI = "note: patient SSN 123-45-6789"


def ids(records: Iterable[AuditRecord]) -> list[str]:
    return [record.record_id for record in records]


def stored_ids(emulator: Emulator) -> list[str]:
    """The insert ids Cloud Logging keeps, in the order they arrived."""
    return [entry.insert_id for entry in emulator.entries(LOG)]


def check_cloud(tmp_path: Path, emulator: Emulator, more: Iterable[Found] = ()) -> Report:
    """`verify` over what Cloud Logging holds (and `more`, put in chain order with it), as
    an auditor runs it."""
    found = sorted(
        [*from_entries(iter(emulator.entries(LOG))), *more],
        key=lambda f: (f.record.chain, f.record.sequence) if f.record else ("", 0),
    )
    return verify(found, load_public_keys([tmp_path / "audit.pub"]))


def quarantine(config: AuditConfig, writer: str = WRITER) -> tuple[list[bytes], list[str]]:
    """What was set aside for a writer: the bytes, and for each where it was and why. Read
    as the shipper's docstring describes the file (frames of JSON envelopes), not with the
    shipper's own code."""
    path = config.spool_dir / QUARANTINE / f"{writer}.envelopes"
    if not path.exists():
        return [], []
    payloads, reasons = [], []
    for envelope in framed(path):
        held = json.loads(envelope)
        payload = base64.b64decode(held["payload"], validate=True)
        assert held["sha256"] == hashlib.sha256(payload).hexdigest()
        payloads.append(payload)
        reasons.append(f"{held['where']}: {held['reason']}")
    return payloads, reasons


async def test_spooled_records_reach_cloud_logging_once_each_and_verify_there(
    tmp_path: Path, emulator: Emulator, entries_api: LoggingServiceV2Client
) -> None:
    config = audit_config(tmp_path, segment_bytes=4096, checkpoint_every_records=10)
    await write(config, 40)
    directory = config.spool_dir / WRITER
    numbers = segments(directory)
    assert len(numbers) >= 3
    records = spooled(config)
    shipper = shipper_for(config, entries_api, batch_entries=16)

    assert shipper.ship_once() == len(records)

    # Each record once, under its own id, in the order it was written, in 16-record batches.
    assert stored_ids(emulator) == ids(records)
    stats = emulator.write_stats()
    assert (stats.calls, stats.failed, stats.duplicates) == (-(-len(records) // 16), 0, 0)
    assert shipper.shipped == len(records)
    newest = segment_path(directory, numbers[-1])
    assert read_mark(directory) == Mark(numbers[-1], newest.stat().st_size)
    # Shipped segments are gone, but not the newest, which its writer may be filling.
    assert segments(directory) == [numbers[-1]]
    report = check_cloud(tmp_path, emulator)
    assert report.ok, report.findings
    (chain,) = report.chains.values()
    assert (chain.exchanges, chain.records, chain.closed) == (40, len(records), True)

    # With nothing new, nothing is sent.
    assert shipper.ship_once() == 0
    assert emulator.write_stats().calls == stats.calls
    assert shipper.shipped == len(records)


async def test_a_batch_sent_again_after_a_crash_is_kept_once(
    tmp_path: Path, emulator: Emulator, entries_api: LoggingServiceV2Client
) -> None:
    config = audit_config(tmp_path)
    await write(config, 10)
    records = spooled(config)
    assert shipper_for(config, entries_api).ship_once() == len(records)

    # The shipper crashed after the batch was accepted, before its mark was saved.
    (config.spool_dir / WRITER / SHIPPED).unlink()
    assert shipper_for(config, entries_api).ship_once() == len(records)

    stats = emulator.write_stats()
    assert (stats.calls, stats.entries_stored, stats.duplicates) == (2, len(records), len(records))
    assert stored_ids(emulator) == ids(records)
    report = check_cloud(tmp_path, emulator)
    assert report.ok, report.findings


@pytest.mark.parametrize(
    "code", [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED], ids=str
)
async def test_transient_errors_are_retried_until_the_batch_is_accepted(
    tmp_path: Path, emulator: Emulator, entries_api: LoggingServiceV2Client, code: grpc.StatusCode
) -> None:
    config = audit_config(tmp_path)
    await write(config, 5)
    records = spooled(config)
    emulator.fail_writes(code, times=3)
    shipper = shipper_for(config, entries_api)

    assert shipper.ship_once() == len(records)

    assert shipper.failures == 3
    stats = emulator.write_stats()
    assert (stats.calls, stats.failed, stats.duplicates) == (4, 3, 0)
    assert stored_ids(emulator) == ids(records)
    report = check_cloud(tmp_path, emulator)
    assert report.ok, report.findings


@pytest.mark.parametrize(
    "code",
    [
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.FAILED_PRECONDITION,
    ],
    ids=str,
)
async def test_other_api_errors_are_retried_and_logged_by_their_code_alone(
    tmp_path: Path,
    emulator: Emulator,
    entries_api: LoggingServiceV2Client,
    caplog: pytest.LogCaptureFixture,
    code: grpc.StatusCode,
) -> None:
    # An error the API may give that is not a known transient one must not end the
    # shipper (its last pass with it); its message may quote a record: not logged.
    config = audit_config(tmp_path)
    await write(config, 5)
    records = spooled(config)
    emulator.fail_writes(code, times=2, message=f"failed on {PHI}")
    shipper = shipper_for(config, entries_api)

    with caplog.at_level(logging.INFO):
        assert shipper.ship_once() == len(records)

    assert shipper.failures == 2
    assert stored_ids(emulator) == ids(records)
    said = [r.getMessage() for r in caplog.records]
    assert sum(code.name in line for line in said) == 2, said
    assert "123-45-6789" not in caplog.text


async def test_a_stop_during_backoff_returns_at_once_and_leaves_the_mark(
    tmp_path: Path, emulator: Emulator, entries_api: LoggingServiceV2Client
) -> None:
    config = audit_config(tmp_path)
    await write(config, 5)
    records = spooled(config)
    emulator.fail_writes(grpc.StatusCode.UNAVAILABLE, times=None)  # an outage
    shipper = shipper_for(config, entries_api, initial_backoff_seconds=5, max_backoff_seconds=5)
    stop = threading.Event()
    timer = threading.Timer(0.2, stop.set)
    timer.start()
    started = time.monotonic()

    assert shipper.ship_once(stop) == 0

    timer.join()
    # Well short of the 5 s backoff, with room for a slow, busy machine.
    assert time.monotonic() - started < 3, "the stop waited for the backoff"
    assert (shipper.failures, shipper.shipped) == (1, 0)
    assert not (config.spool_dir / WRITER / SHIPPED).exists()
    assert stored_ids(emulator) == []

    emulator.clear_faults()  # the service is back: the next pass ships it all
    assert shipper.ship_once() == len(records)
    assert stored_ids(emulator) == ids(records)


async def test_a_stop_counts_the_batches_accepted_before_it(
    tmp_path: Path, emulator: Emulator, entries_api: LoggingServiceV2Client
) -> None:
    config = audit_config(tmp_path)
    await write(config, 8)
    records = spooled(config)
    directory = config.spool_dir / WRITER
    shipper = shipper_for(
        config, entries_api, batch_entries=4, initial_backoff_seconds=5, max_backoff_seconds=5
    )
    stop = threading.Event()
    emulator.delay_writes(0.3)  # the first batch is accepted, late ...

    def outage_after_the_first_batch() -> None:
        while emulator.write_stats().calls < 1:
            time.sleep(0.005)
        time.sleep(0.1)  # the first call has taken its delay; ...
        emulator.fail_writes(grpc.StatusCode.UNAVAILABLE, times=None)  # ... the next fail
        while emulator.write_stats().failed < 1:
            time.sleep(0.005)
        stop.set()

    watcher = threading.Thread(target=outage_after_the_first_batch)
    watcher.start()
    shipped = shipper.ship_once(stop)
    watcher.join()

    assert shipped == shipper.shipped == 4
    assert stored_ids(emulator) == ids(records[:4])
    (number,) = segments(directory)
    fifth = scan(segment_path(directory, number).read_bytes()).frames[4][0]
    assert read_mark(directory) == Mark(number, fifth)


async def test_a_stop_during_a_write_that_hangs_returns_at_once_and_leaves_the_mark(
    tmp_path: Path, emulator: Emulator, entries_api: LoggingServiceV2Client
) -> None:
    config = audit_config(tmp_path)
    await write(config, 5)
    records = spooled(config)
    emulator.delay_writes(30, times=None)  # the API takes the call and does not answer
    shipper = shipper_for(config, entries_api)
    stop = threading.Event()
    timer = threading.Timer(0.2, stop.set)
    timer.start()
    started = time.monotonic()

    assert shipper.ship_once(stop) == 0

    timer.join()
    # Well short of the 30 s the write would take, with room for a slow, busy machine.
    assert time.monotonic() - started < 5, "the stop waited for the write's timeout"
    assert not (config.spool_dir / WRITER / SHIPPED).exists()
    emulator.clear_faults()  # the next pass sends the batch again: it is kept once
    assert shipper.ship_once() == len(records)
    assert stored_ids(emulator) == ids(records)


async def test_the_last_pass_after_a_stop_is_bounded_when_the_api_hangs(
    tmp_path: Path, emulator: Emulator, entries_api: LoggingServiceV2Client
) -> None:
    # A stop while a write hangs, then the last pass: its writes are given at most the
    # time left of it, so the whole ends well within a pod's grace period.
    config = audit_config(tmp_path)
    await write(config, 5)
    records = spooled(config)
    emulator.delay_writes(30, times=None)
    shipper = shipper_for(config, entries_api)
    stop = threading.Event()
    timer = threading.Timer(0.2, stop.set)
    timer.start()
    started = time.monotonic()

    shipper.run(stop, poll_seconds=0.01, final_seconds=0.5)

    timer.join()
    # The stop, then a last pass of 0.5 s: nowhere near the 30 s the writes would hang.
    assert time.monotonic() - started < 5
    assert shipper.failures == 1  # the last pass's write, out of time: DEADLINE_EXCEEDED
    assert not (config.spool_dir / WRITER / SHIPPED).exists()
    assert stored_ids(emulator) == []
    emulator.clear_faults()
    assert shipper.ship_once(deadline=time.monotonic() + 5) == len(records)
    assert stored_ids(emulator) == ids(records)


async def test_a_record_refused_as_invalid_is_set_aside_and_the_rest_shipped(
    tmp_path: Path, emulator: Emulator, entries_api: LoggingServiceV2Client
) -> None:
    config = audit_config(tmp_path)
    await write(config, 5)
    records = spooled(config)
    directory = config.spool_dir / WRITER
    (number,) = segments(directory)
    payloads = framed(segment_path(directory, number))
    # The batch is refused, and then the first record alone: the one the API will not take.
    emulator.fail_writes(grpc.StatusCode.INVALID_ARGUMENT, times=2, message="refused (test)")
    shipper = shipper_for(config, entries_api)

    assert shipper.ship_once() == len(records) - 1

    assert (shipper.shipped, shipper.quarantined) == (len(records) - 1, 1)
    assert stored_ids(emulator) == ids(records[1:])
    set_aside, reasons = quarantine(config)
    assert set_aside == payloads[:1]
    assert len(reasons) == 1
    assert reasons[0].endswith("refused (test)")
    assert f"{WRITER}/{segment_path(directory, number).name}@0" in reasons[0]
    assert read_mark(directory) == Mark(number, segment_path(directory, number).stat().st_size)
    # Cloud Logging lacks the record, and says so; with the quarantine the chain is whole.
    cloud = check_cloud(tmp_path, emulator)
    assert [(f.kind, f.message) for f in cloud.findings] == [
        ("deleted", "records 1-1 are missing before it")
    ]
    kept = [Found("quarantine", AuditRecord.FromString(p)) for p in set_aside]
    report = check_cloud(tmp_path, emulator, kept)
    assert report.ok, report.findings


async def test_a_record_refused_again_after_a_crash_is_set_aside_once(
    tmp_path: Path,
    emulator: Emulator,
    entries_api: LoggingServiceV2Client,
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = audit_config(tmp_path)
    await write(config, 5)
    directory = config.spool_dir / WRITER
    (number,) = segments(directory)
    payloads = framed(segment_path(directory, number))
    refused = f"refused: {PHI}"
    emulator.fail_writes(grpc.StatusCode.INVALID_ARGUMENT, times=2, message=refused)
    with caplog.at_level(logging.INFO):
        assert shipper_for(config, entries_api).ship_once() == len(payloads) - 1
    # The shipper crashed after setting the record aside, before its mark moved; started
    # again, it sends the batch again, and the API refuses the record again.
    (directory / SHIPPED).unlink()
    emulator.fail_writes(grpc.StatusCode.INVALID_ARGUMENT, times=2, message=refused)
    again = shipper_for(config, entries_api)
    with caplog.at_level(logging.INFO):
        assert again.ship_once() == len(payloads) - 1

    assert again.quarantined == 0
    set_aside, reasons = quarantine(config)
    assert set_aside == payloads[:1]
    assert reasons == [
        f"{WRITER}/{segment_path(directory, number).name}@0: Cloud Logging refused it: {refused}"
    ]
    # One file, each frame holding the bytes and their reason together.
    assert [p.name for p in (config.spool_dir / QUARANTINE).iterdir()] == [f"{WRITER}.envelopes"]
    assert "123-45-6789" not in caplog.text  # the API's words stay out of the process log
    assert f"{WRITER}/{segment_path(directory, number).name}@0" in caplog.text


async def test_an_append_to_the_quarantine_cut_short_by_a_crash_is_made_again(
    tmp_path: Path, emulator: Emulator, entries_api: LoggingServiceV2Client
) -> None:
    config = audit_config(tmp_path)
    await write(config, 5)
    directory = config.spool_dir / WRITER
    (number,) = segments(directory)
    payloads = framed(segment_path(directory, number))
    emulator.fail_writes(grpc.StatusCode.INVALID_ARGUMENT, times=2, message="refused (test)")
    shipper_for(config, entries_api).ship_once()
    (set_aside, reasons) = quarantine(config)
    # A crash in the middle of that append: half of it on disk, and the mark not moved.
    envelopes = config.spool_dir / QUARANTINE / f"{WRITER}.envelopes"
    whole = envelopes.read_bytes()
    envelopes.write_bytes(whole[: len(whole) // 2])
    (directory / SHIPPED).unlink()
    emulator.fail_writes(grpc.StatusCode.INVALID_ARGUMENT, times=2, message="refused (test)")
    again = shipper_for(config, entries_api)

    assert again.ship_once() == len(payloads) - 1

    assert again.quarantined == 1
    assert quarantine(config) == (set_aside, reasons) == (payloads[:1], reasons)
    assert envelopes.read_bytes() == whole


async def test_a_record_bigger_than_an_entry_goes_in_parts_and_comes_back_whole(
    tmp_path: Path, emulator: Emulator, entries_api: LoggingServiceV2Client
) -> None:
    config = audit_config(tmp_path, bodies=BIG_BODIES)
    await write_big(config, "req-big")
    start, big, shutdown = spooled(config)
    shipper = shipper_for(config, entries_api)

    assert shipper.ship_once() == shipper.shipped == 3

    stored = stored_ids(emulator)
    parts = [f"{big.record_id}.part{i}" for i in range(1, 5)]  # 160 KiB of the record each
    assert stored == [start.record_id, *parts, shutdown.record_id]
    (back,) = [f.record for f in from_entries(iter(emulator.entries(LOG))) if f.record == big]
    assert back.exchange.response.text == big.exchange.response.text
    assert back.exchange.response.size > 600_000
    report = check_cloud(tmp_path, emulator)
    assert report.ok, report.findings


async def test_a_batch_over_the_request_limit_goes_in_several_requests(
    tmp_path: Path, emulator: Emulator, entries_api: LoggingServiceV2Client
) -> None:
    # Fourteen 600 KB answers: some 11 MB of entries, over the API's 10 MB per request.
    config = audit_config(tmp_path, bodies=BIG_BODIES)
    await write_big(config, *(f"req-{i}" for i in range(14)))
    records = spooled(config)
    shipper = shipper_for(config, entries_api)

    assert shipper.ship_once() == len(records)

    stats = emulator.write_stats()
    assert (stats.calls, stats.failed, shipper.quarantined) == (2, 0, 0)
    report = check_cloud(tmp_path, emulator)
    assert report.ok, report.findings
    assert [c.exchanges for c in report.chains.values()] == [14]


async def test_every_writer_under_the_root_is_shipped(
    tmp_path: Path, emulator: Emulator, entries_api: LoggingServiceV2Client
) -> None:
    extauthz = audit_config(tmp_path, writer="extauthz-test")
    extproc = audit_config(tmp_path)
    await write(extauthz, 3, prefix="denied")
    await write(extproc, 4)
    records = spooled(extproc)  # the root holds both writers
    shipper = shipper_for(extproc, entries_api)

    assert shipper.ship_once() == shipper.shipped == len(records) == 3 + 4 + 2 * 2

    assert sorted(stored_ids(emulator)) == sorted(ids(records))
    report = check_cloud(tmp_path, emulator)
    assert report.ok, report.findings
    assert {c.writer: c.exchanges for c in report.chains.values()} == {
        "extauthz-test": 3,
        "extproc-test": 4,
    }
    for writer in ("extauthz-test", "extproc-test"):
        (number,) = segments(extproc.spool_dir / writer)
        size = segment_path(extproc.spool_dir / writer, number).stat().st_size
        assert read_mark(extproc.spool_dir / writer) == Mark(number, size)


async def test_damage_inside_an_older_segment_is_set_aside_and_shipping_goes_on(
    tmp_path: Path, emulator: Emulator, entries_api: LoggingServiceV2Client
) -> None:
    config = audit_config(tmp_path, segment_bytes=4096)
    await write(config, 30)
    directory = config.spool_dir / WRITER
    numbers = segments(directory)
    assert len(numbers) >= 2
    records = spooled(config)
    oldest = segment_path(directory, numbers[0])
    data = bytearray(oldest.read_bytes())
    frames = scan(bytes(data)).frames
    (at, payload), (after, _) = frames[3], frames[4]
    data[at + 20 : at + 84] = bytes(64)  # a block of zeros, as a failing disk gives back
    oldest.write_bytes(bytes(data))
    lost = AuditRecord.FromString(payload)
    shipper = shipper_for(config, entries_api)

    assert shipper.ship_once() == shipper.shipped == len(records) - 1

    assert stored_ids(emulator) == [i for i in ids(records) if i != lost.record_id]
    set_aside, reasons = quarantine(config)
    assert set_aside == [bytes(data[at:after])]  # the damaged bytes, kept as they are
    where = f"{WRITER}/{oldest.name}@{at}"
    assert reasons == [f"{where}: {after - at} bytes that are not whole records"]
    assert shipper.quarantined == 1
    assert segments(directory) == numbers[-1:]
    # What the damage took is named by verify over Cloud Logging, and nothing else is.
    cloud = check_cloud(tmp_path, emulator)
    assert [(f.kind, f.message) for f in cloud.findings] == [
        ("deleted", f"records {lost.sequence}-{lost.sequence} are missing before it")
    ]


async def test_an_unfinished_write_at_the_end_of_the_newest_segment_is_waited_for(
    tmp_path: Path, emulator: Emulator, entries_api: LoggingServiceV2Client
) -> None:
    config = audit_config(tmp_path)
    first = await write(config, 3)
    directory = config.spool_dir / WRITER
    (number,) = segments(directory)
    segment = segment_path(directory, number)
    records = spooled(config)
    whole = segment.read_bytes()
    # A write under way, or a crash in the middle of one.
    segment.write_bytes(whole + frame(b"x" * 40)[:20])
    shipper = shipper_for(config, entries_api)

    assert shipper.ship_once() == len(records)
    assert read_mark(directory) == Mark(number, len(whole))
    assert shipper.ship_once() == 0  # still waiting: not damage, nothing set aside
    assert quarantine(config) == ([], [])

    # The writer comes back: it cuts the unfinished write off and starts a chain after it.
    second = await write(config, 2)
    assert second.chain != first.chain
    assert shipper.ship_once() == 1 + 2 + 1  # chain start, 2 exchanges, shutdown

    assert stored_ids(emulator) == ids(records) + ids(spooled(config))[len(records) :]
    report = check_cloud(tmp_path, emulator)
    assert report.ok, report.findings
    assert {c.chain: c.exchanges for c in report.chains.values()} == {
        first.chain: 3,
        second.chain: 2,
    }
    assert quarantine(config) == ([], [])


async def test_verify_of_a_shipped_spool_notes_the_records_it_no_longer_holds(
    tmp_path: Path, entries_api: LoggingServiceV2Client, capsys: pytest.CaptureFixture[str]
) -> None:
    config = audit_config(tmp_path, segment_bytes=4096)
    await write(config, 40)
    shipper_for(config, entries_api).ship_once()
    assert segments(config.spool_dir / WRITER)[0] > 1  # shipped segments are gone
    command = ["audit", "verify", "--spool", str(config.spool_dir)]
    assert main([*command, "--public-key", str(tmp_path / "audit.pub")]) == 0
    assert "were shipped and are no longer in the spool" in capsys.readouterr().out
    # Without the shipper's mark, a missing start is a deletion.
    (config.spool_dir / WRITER / SHIPPED).unlink()
    assert main([*command, "--public-key", str(tmp_path / "audit.pub")]) == 1
    assert "FINDING deleted" in capsys.readouterr().out


async def test_a_record_not_yet_acknowledged_is_not_shipped(
    tmp_path: Path, entries_api: LoggingServiceV2Client, emulator: Emulator
) -> None:
    # A frame on disk past the writer's committed mark: written, but its fsync has not
    # returned (or failed, and the writer cuts it off). Shipped, it would be a record of
    # an exchange the client may have been refused.
    config = audit_config(tmp_path)
    await write(config, 2)
    pending = pending_frame(config.spool_dir / WRITER)
    shipper = shipper_for(config, entries_api)
    assert shipper.ship_once() == 4  # chain start, 2 exchanges, the shutdown checkpoint
    assert pending.record_id not in {e.insert_id for e in emulator.entries(LOG)}
    assert shipper.ship_once() == 0


def pending_frame(directory: Path) -> AuditRecord:
    """A frame on disk after the writer's committed mark: written, not yet acknowledged;
    the record it holds."""
    number = segments(directory)[-1]
    segment = segment_path(directory, number)
    pending = AuditRecord.FromString(scan(segment.read_bytes()).frames[-1][1])
    pending.sequence += 1
    pending.record_id = f"{pending.chain}-{pending.sequence:012d}"
    with segment.open("ab") as out:
        out.write(frame(pending.SerializeToString()))
    return pending


def bad_mark(directory: Path, where: str) -> Mark:
    numbers = segments(directory)
    oldest, newest = (segment_path(directory, n) for n in (numbers[0], numbers[-1]))
    if where == "past-the-newest-segment":
        return Mark(numbers[-1] + 2, 0)
    if where == "past-the-end-of-a-segment":
        return Mark(numbers[-1], newest.stat().st_size + 100)
    if where == "inside-a-frame":
        return Mark(numbers[0], scan(oldest.read_bytes()).frames[2][0] + 3)
    assert where == "past-what-the-writer-committed"
    pending_frame(directory)
    return Mark(numbers[-1], newest.stat().st_size)  # the end of the pending frame


@pytest.mark.parametrize(
    "where",
    [
        "past-the-newest-segment",
        "past-the-end-of-a-segment",
        "inside-a-frame",
        "past-what-the-writer-committed",
    ],
)
async def test_a_mark_that_is_no_place_in_the_spool_is_not_trusted(
    tmp_path: Path,
    emulator: Emulator,
    entries_api: LoggingServiceV2Client,
    caplog: pytest.LogCaptureFixture,
    where: str,
) -> None:
    # A mark the shipper cannot have saved (a spool restored from a backup, a mark copied
    # from elsewhere, a hand edit): shipping starts again from the oldest segment, and
    # Cloud Logging keeps each record once.
    config = audit_config(tmp_path, segment_bytes=4096)
    await write(config, 30)
    directory = config.spool_dir / WRITER
    records = spooled(config)
    if where == "past-what-the-writer-committed":
        committed = read_mark(directory, COMMITTED)
    mark = bad_mark(directory, where)
    (directory / SHIPPED).write_text(f"{mark.segment} {mark.offset}\n")
    shipper = shipper_for(config, entries_api)

    with caplog.at_level(logging.INFO):
        assert shipper.ship_once() == shipper.shipped == len(records)

    assert stored_ids(emulator) == ids(records)
    assert quarantine(config) == ([], [])
    said = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert [line for line in said if f"mark {mark.segment} {mark.offset}" in line], said
    newest = segments(directory)[-1]
    if where == "past-what-the-writer-committed":
        assert read_mark(directory) == committed
    else:
        assert read_mark(directory) == Mark(newest, segment_path(directory, newest).stat().st_size)
    report = check_cloud(tmp_path, emulator)
    assert report.ok, report.findings


async def test_a_mark_a_restarted_writer_found_past_its_spool_is_not_trusted(
    tmp_path: Path, emulator: Emulator, entries_api: LoggingServiceV2Client
) -> None:
    # A writer that finds the mark past its spool's end writes on after the mark: the mark
    # then names a segment that never was, with older segments, never shipped, before it.
    config = audit_config(tmp_path, segment_bytes=4096)
    await write(config, 30)
    directory = config.spool_dir / WRITER
    numbers = segments(directory)
    (directory / SHIPPED).write_text(f"{numbers[-1] + 2} 0\n")
    await write(config, 2)
    assert segments(directory) == [*numbers, numbers[-1] + 3]
    records = spooled(config)
    shipper = shipper_for(config, entries_api)

    assert shipper.ship_once() == len(records)

    assert stored_ids(emulator) == ids(records)
    assert segments(directory) == [numbers[-1] + 3]


async def test_nothing_is_pruned_on_the_word_of_a_mark_past_the_spool(
    tmp_path: Path, emulator: Emulator, entries_api: LoggingServiceV2Client
) -> None:
    config = audit_config(tmp_path, segment_bytes=4096)
    await write(config, 30)
    directory = config.spool_dir / WRITER
    numbers = segments(directory)
    assert len(numbers) >= 3
    records = spooled(config)
    (directory / SHIPPED).write_text(f"{numbers[-1] + 2} 0\n")
    emulator.fail_writes(grpc.StatusCode.UNAVAILABLE, times=None)  # an outage
    shipper = shipper_for(config, entries_api)
    stop = threading.Event()
    timer = threading.Timer(0.2, stop.set)
    timer.start()

    assert shipper.ship_once(stop) == 0

    timer.join()
    assert segments(directory) == numbers  # not one unshipped segment deleted
    emulator.clear_faults()
    assert shipper.ship_once() == len(records)
    assert stored_ids(emulator) == ids(records)
    assert segments(directory) == numbers[-1:]  # shipped now: pruned


@pytest.mark.parametrize(
    ("payload", "said"),
    [
        ({"sequence": PHI}, "jsonPayload.sequence is a string, not an integer of 0 or more"),
        (
            {"exchange": {"principal": {"groups": PHI}}},
            "jsonPayload.exchange.principal.groups is a string, not a list",
        ),
        ({PHI: 1}, "jsonPayload has a field that AuditRecord does not have"),
    ],
    ids=["a-value", "a-list", "a-field-name"],
)
async def test_an_entry_that_is_not_a_record_is_named_without_its_content(
    tmp_path: Path,
    emulator: Emulator,
    entries_api: LoggingServiceV2Client,
    capsys: pytest.CaptureFixture[str],
    payload: dict[str, Any],
    said: str,
) -> None:
    config = audit_config(tmp_path)
    await write(config, 2)
    shipper_for(config, entries_api).ship_once()
    entry = {"insert_id": "not-a-record", "json_payload": payload}
    entries_api.write_log_entries(
        request={"log_name": LOG, "resource": {"type": "global"}, "entries": [entry]}
    )

    key = str(tmp_path / "audit.pub")
    command = ["audit", "verify", "--project", PROJECT, "--endpoint", emulator.endpoint]
    assert main([*command, "--public-key", key]) == 1

    out, err = capsys.readouterr()
    findings = [line for line in out.splitlines() if line.startswith("FINDING")]
    assert findings == [f"FINDING unreadable: entry not-a-record: not an audit record: {said}"]
    assert "123-45-6789" not in out + err
    assert "patient" not in out + err
