"""The shipper: its own process, one per pod. It reads every writer's spool and writes
the records to Cloud Logging in batches, and only then moves its mark.

- The mark (`shipped` in each writer's directory: segment and offset) is replaced
  atomically after a batch is accepted. A crash before that sends the batch again; the
  entries keep their insertId and timestamp, so Cloud Logging keeps them once.
- A mark that is no place the shipper can have reached (a segment past the newest, or
  missing while older ones are there; an offset past the segment's end or past what its
  writer committed, or inside a frame) is not trusted: it is logged, nothing is pruned on
  its word, and shipping starts again from the oldest segment (the insertIds keep each
  record once).
- A batch goes in as many write requests as the API's 10 MB per request needs.
- Every API error but INVALID_ARGUMENT (unavailable, deadline, quota, credentials, and
  those no one expects: UNKNOWN, NOT_FOUND ...) is retried here with backoff, the batch
  unchanged, each counted in `failures` and logged by its code alone (its message may
  quote a record). A stop cuts the wait short, or the write under way (given up, sent
  again later), and leaves the mark where it was.
- Each write has a timeout of at most WRITE_TIMEOUT_SECONDS, and no more than the time
  left before a deadline: after a stop, `run` makes a last pass bounded as a whole, so a
  pod stops within its grace period even if Cloud Logging hangs.
- A batch refused as invalid is sent entry by entry; an entry refused alone is set aside
  in quarantine with the reason, never dropped, and shipping goes on.
- Bytes that are not whole frames in a segment its writer has left are damage: they are
  set aside in quarantine too, with where they were, and shipping goes on from the next
  whole record. At the end of the newest segment they are a write under way: waited for.
- Segments wholly behind the mark are deleted, but not the one a writer is filling nor
  the newest that holds a record (a writer that starts again links to its last one).

The quarantine's format: custos.audit.quarantine."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path

from google.api_core import exceptions as api_errors
from google.cloud.logging_v2.services.logging_service_v2 import LoggingServiceV2Client
from google.cloud.logging_v2.types import LogEntry

from custos.audit.entries import MAX_REQUEST_BYTES, to_entries
from custos.audit.quarantine import QUARANTINE, Quarantine, SetAside
from custos.audit.records import parse
from custos.audit.sources import spool_writers
from custos.audit.spool import (
    COMMITTED,
    HEADER,
    SHIPPED,
    Mark,
    next_frame,
    read_frames,
    read_mark,
    segment_path,
    segments,
    walk,
)
from custos.cloud_logging.resource_names import log_path

log = logging.getLogger(__name__)

# Retried as they are: the service, the quota or the credentials may come back, and an
# error no one expected must not end the shipper (and its last pass with it).
# INVALID_ARGUMENT is not: the entry refused is set aside instead.
API_ERRORS = (api_errors.GoogleAPICallError, api_errors.RetryError)
START = Mark(0, 0)  # before every segment: no mark, or one not trusted
WRITE_TIMEOUT_SECONDS = 30.0
# The last pass after a stop, all of it: well within Kubernetes' default grace of 30 s.
FINAL_PASS_SECONDS = 10.0
# How often a wait for an answer looks at `stop`.
STOP_CHECK_SECONDS = 0.05


@dataclass(frozen=True)
class Spooled:
    """A frame read from a spool: a record's bytes, or damaged bytes to set aside."""

    payload: bytes
    where: str  # writer/segment@offset, for the quarantine's reasons
    end: Mark  # just after it


@dataclass
class Batch:
    directory: Path
    records: list[Spooled]
    damage: Spooled | None = None  # instead of records: bytes that are not whole frames


class Shipper:
    def __init__(
        self,
        spool_root: Path,
        client: LoggingServiceV2Client,
        project: str,
        log_id: str,
        batch_entries: int = 500,
        max_backoff_seconds: float = 30.0,
        initial_backoff_seconds: float = 0.1,
    ) -> None:
        self._root = spool_root
        self._client = client
        self._log_name = self.destination = log_path(project, log_id)
        self._batch_entries = batch_entries
        self._max_backoff = max_backoff_seconds
        self._initial_backoff = initial_backoff_seconds
        self._quarantine = Quarantine(spool_root / QUARANTINE)
        # Marks saved or checked here: checking one reads its segment, so once is enough.
        self._trusted: dict[Path, Mark] = {}
        self._rejected: dict[Path, Mark] = {}  # logged once each
        self.shipped = 0  # records accepted since start
        self.quarantined = 0  # set aside since start (not counting what already was)
        self.failures = 0  # API errors met, each retried

    def run(
        self, stop: threading.Event, poll_seconds: float, final_seconds: float = FINAL_PASS_SECONDS
    ) -> None:
        """Ships until `stop`, then once more for at most `final_seconds`, so a pod that
        stops leaves its spool shipped if Cloud Logging takes it, and stops in time if it
        hangs: a write under way at the stop is given up (the last pass sends it again)."""
        while not stop.is_set():
            if not self.ship_once(stop):
                stop.wait(poll_seconds)
        self.ship_once(deadline=time.monotonic() + final_seconds)

    def ship_once(self, stop: threading.Event | None = None, deadline: float | None = None) -> int:
        """Ships what every spool holds now, or until `stop` or `deadline` (a time.monotonic
        value); the number of records Cloud Logging accepted (records set aside in
        quarantine are not among them)."""
        shipped = 0
        if not self._root.is_dir():
            return 0
        try:
            for directory in spool_writers(self._root):
                while (batch := self._read(directory)) is not None:
                    if _ended(stop, deadline):
                        return shipped
                    if batch.damage is not None:
                        damage = batch.damage
                        reason = f"{len(damage.payload)} bytes that are not whole records"
                        self._set_aside(directory, damage, reason)
                        self._save_mark(directory, damage.end)
                        continue
                    accepted = self._send(batch, stop, deadline)
                    if accepted is None:  # stopped before the batch was all in: send it again
                        return shipped
                    self._save_mark(directory, batch.records[-1].end)
                    shipped += accepted
                self._prune(directory)
            return shipped
        finally:
            self.shipped += shipped

    def _read(self, directory: Path) -> Batch | None:
        mark = self._mark(directory)
        # Only what the writer has acknowledged: a frame written and not yet fsync'd (or
        # whose fsync failed, and which the writer then cuts off) is not a record yet.
        committed = read_mark(directory, COMMITTED)
        records: list[Spooled] = []
        numbers = segments(directory)
        for number in numbers:
            if number < mark.segment:
                continue
            if committed is not None and number > committed.segment:
                break
            start = mark.offset if number == mark.segment else 0
            stop = committed.offset if committed and number == committed.segment else None
            path = segment_path(directory, number)
            where = f"{directory.name}/{path.name}"
            result = read_frames(path, start, stop, self._batch_entries - len(records))
            for at, payload in result.frames:
                end = Mark(number, at + HEADER.size + len(payload))
                records.append(Spooled(payload, f"{where}@{at}", end))
            if len(records) == self._batch_entries:
                return Batch(directory, records)
            if result.end == result.size:
                continue
            if records:  # ship what comes before; the next read starts there
                break
            if number == numbers[-1]:
                # A write under way, or an unfinished one its writer cuts off when it starts
                # again, and then writes from there: a mark moved past it would skip that.
                # So wait, even for damage with whole frames after it: that is set aside
                # once the writer has moved on to a new segment.
                break
            # An older segment is never written again: what is not whole frames is damage.
            # Set it aside and go on from the next whole record, or from the segment's end.
            data = path.read_bytes()
            resume = next_frame(data, result.end + 1)
            damage = Spooled(
                data[result.end : resume], f"{where}@{result.end}", Mark(number, resume)
            )
            return Batch(directory, [], damage)
        return Batch(directory, records) if records else None

    def _mark(self, directory: Path) -> Mark:
        """Where shipping goes on from: the saved mark, if it is a place in the spool the
        shipper can have reached; else the start. Pruning on a mark past the spool would
        delete what was never shipped; shipping again only sends what Cloud Logging keeps
        once."""
        mark = read_mark(directory)
        if mark is None or self._trusted.get(directory) == mark:
            return mark or START
        problem = _misplaced(directory, mark)
        if problem is None:
            self._trusted[directory] = mark
            return mark
        if self._rejected.get(directory) != mark:
            self._rejected[directory] = mark
            log.error(
                "%s: shipped mark %d %d %s; shipping again from the oldest segment and "
                "deleting nothing on its word",
                directory.name,
                mark.segment,
                mark.offset,
                problem,
            )
        return START

    def _send(
        self, batch: Batch, stop: threading.Event | None, deadline: float | None
    ) -> int | None:
        """Writes a batch's records; how many were accepted, the others being set aside in
        quarantine, or None if `stop` or `deadline` came first."""
        entries: list[tuple[int, LogEntry]] = []
        refused: set[int] = set()
        for index, spooled in enumerate(batch.records):
            record = parse(spooled.payload)
            if record is None:
                self._refuse(batch, index, "not an audit record", refused)
                continue
            entries.extend((index, e) for e in to_entries(record, spooled.payload, self._log_name))
        for request in _requests(entries):
            try:
                if not self._write([e for _, e in request], stop, deadline):
                    return None
            except api_errors.InvalidArgument:
                for index, entry in request:  # find the entry refused: send them one by one
                    if index in refused:  # another part of its record was refused already
                        continue
                    try:
                        if not self._write([entry], stop, deadline):
                            return None
                    except api_errors.InvalidArgument as exc:
                        reason = f"Cloud Logging refused it: {exc.message}"
                        self._refuse(batch, index, reason, refused)
        return len(batch.records) - len(refused)

    def _refuse(self, batch: Batch, index: int, reason: str, refused: set[int]) -> None:
        self._set_aside(batch.directory, batch.records[index], reason)
        refused.add(index)

    def _write(
        self, entries: list[LogEntry], stop: threading.Event | None, deadline: float | None
    ) -> bool:
        """Writes until accepted (True), or until `stop` is set or `deadline` passes
        (False). INVALID_ARGUMENT is raised, for the caller to find the entry refused. The
        client's own retry is off: it would retry out of sight of `failures`, of `stop`
        and of the deadline."""
        backoff = self._initial_backoff
        while (left := _time_left(deadline)) > 0:
            try:
                return self._call(entries, min(WRITE_TIMEOUT_SECONDS, left), stop)
            except api_errors.InvalidArgument:
                raise
            except API_ERRORS as exc:
                self.failures += 1
                log.warning("Cloud Logging write failed (%s); retrying", _code(exc))
            if not _pause(backoff, stop, deadline):
                return False
            backoff = min(backoff * 2, self._max_backoff)
        return False

    def _call(self, entries: list[LogEntry], timeout: float, stop: threading.Event | None) -> bool:
        """One write request: True once accepted (raising what the API said if it was not),
        False if `stop` came first. The call runs in a thread of its own, so that a stop
        does not wait on an API that hangs; given up, it ends by its timeout (a daemon, so
        as not to hold the process at exit), and what it may yet write is sent again later
        under the same insertIds."""
        answer: futures.Future[None] = futures.Future()

        def call() -> None:
            try:
                self._client.write_log_entries(
                    log_name=self._log_name, entries=entries, retry=None, timeout=timeout
                )
            except BaseException as exc:  # handed to the caller's thread, raised there
                answer.set_exception(exc)
            else:
                answer.set_result(None)

        threading.Thread(target=call, name="custos-ship-write", daemon=True).start()
        while not answer.done():
            if stop is not None and stop.is_set():
                return False
            futures.wait([answer], None if stop is None else STOP_CHECK_SECONDS)
        answer.result()
        return True

    def _set_aside(self, directory: Path, spooled: Spooled, reason: str) -> None:
        """Into quarantine with its reason, durably, before the mark moves past it."""
        if not self._quarantine.add(
            directory.name, SetAside(spooled.payload, spooled.where, reason)
        ):
            log.warning("%s is in quarantine already: not set aside again", spooled.where)
            return
        self.quarantined += 1
        # Where, not why: the API's words may quote what the record holds, and the process
        # log is no place for that. The reason is in the quarantine, beside the record.
        name = self._quarantine.path(directory.name).name
        log.error("an audit record (%s) was set aside in quarantine: see %s", spooled.where, name)

    def _save_mark(self, directory: Path, mark: Mark) -> None:
        temporary = directory / f"{SHIPPED}.tmp"
        with open(temporary, "w") as out:
            out.write(f"{mark.segment} {mark.offset}\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, directory / SHIPPED)
        self._trusted[directory] = mark

    def _prune(self, directory: Path) -> None:
        mark = self._mark(directory)  # START for a mark not trusted: nothing is deleted
        numbers = segments(directory)
        # Never the newest, which its writer may be filling, nor the newest that holds a
        # record: a writer that starts again links its new chain to that record.
        holding = [n for n in numbers if segment_path(directory, n).stat().st_size]
        keep = min(numbers[-1:] + holding[-1:], default=0)
        for number in numbers:
            if number >= keep:
                break
            path = segment_path(directory, number)
            done = number < mark.segment or (
                number == mark.segment and mark.offset >= path.stat().st_size
            )
            if done:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()


def _misplaced(directory: Path, mark: Mark) -> str | None:
    """Why `mark` is no place the shipper can have reached in this spool; None if it is.
    The shipper moves it only to the end of a whole frame it read, or past damage to the
    next frame, never past what the writer committed; and prunes oldest first."""
    numbers = segments(directory)
    if not numbers or mark.segment < numbers[0]:
        return None  # behind every segment left: those it passed were shipped and pruned
    if mark.segment > numbers[-1]:
        return "is past the newest segment"
    if mark.segment not in numbers:
        return "names a segment that is gone while older ones are not"
    committed = read_mark(directory, COMMITTED)
    if committed is not None and mark.segment > committed.segment:
        return "is past what the writer committed"
    path = segment_path(directory, mark.segment)
    end = path.stat().st_size
    if committed is not None and mark.segment == committed.segment:
        end = min(end, committed.offset)
    if mark.offset > end:
        return "is past the end of the segment or of what the writer committed"
    if not _frame_start(path, mark.offset, end):
        return "is not where a frame starts"
    return None


def _frame_start(path: Path, offset: int, end: int) -> bool:
    """Whether reading the segment (up to `end`) as `Shipper._read` does, from frame to
    frame and past damage to the next whole record, comes to `offset`."""
    with open(path, "rb") as segment:
        data = segment.read(end)
    for at, _, _ in walk(data):
        if at >= offset:
            return at == offset
    # Past every step: reading comes to the end of the data, and no further.
    return offset == len(data)


def _time_left(deadline: float | None) -> float:
    return math.inf if deadline is None else deadline - time.monotonic()


def _ended(stop: threading.Event | None, deadline: float | None) -> bool:
    return (stop is not None and stop.is_set()) or _time_left(deadline) <= 0


def _pause(seconds: float, stop: threading.Event | None, deadline: float | None) -> bool:
    """Waits `seconds`, or until `deadline` if that is sooner; False if `stop` came first."""
    seconds = max(0.0, min(seconds, _time_left(deadline)))
    if stop is None:
        time.sleep(seconds)
        return True
    return not stop.wait(seconds)


def _code(error: Exception) -> str:
    """The API error's status code, for the process log: never its message, which may quote
    a record."""
    status = getattr(error, "grpc_status_code", None)
    return status.name if status is not None else type(error).__name__


def _requests(entries: list[tuple[int, LogEntry]]) -> Iterator[list[tuple[int, LogEntry]]]:
    """A batch's entries in write requests under the API's size limit: a batch of big
    records can be many times that, and a request over it is refused whole."""
    request: list[tuple[int, LogEntry]] = []
    size = 0
    for item in entries:
        entry_size = LogEntry.pb(item[1]).ByteSize()
        if request and size + entry_size > MAX_REQUEST_BYTES:
            yield request
            request, size = [], 0
        request.append(item)
        size += entry_size
    if request:
        yield request
