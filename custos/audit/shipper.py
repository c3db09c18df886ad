"""The shipper: its own process, one per pod. It reads every writer's spool and writes
the records to Cloud Logging in batches, and only then moves its mark.

- The mark (`shipped` in each writer's directory: segment and offset) is replaced
  atomically after a batch is accepted. A crash before that sends the batch again; the
  entries keep their insertId and timestamp, so Cloud Logging keeps them once.
- A batch goes in as many write requests as the API's 10 MB per request needs.
- Transient errors (unavailable, deadline, quota, and credentials that may come back) are
  retried here with backoff, the batch unchanged, each counted in `failures`; a stop cuts
  the wait short and leaves the mark where it was.
- A batch refused as invalid is sent entry by entry; an entry refused alone is set aside
  in `quarantine/` with the reason, never dropped, and shipping goes on.
- Bytes that are not whole frames in a segment its writer has left are damage: they are
  set aside in `quarantine/` too, with where they were, and shipping goes on from the next
  whole record. At the end of the newest segment they are a write under way: waited for.
- Segments wholly behind the mark are deleted, but not the one a writer is filling nor
  the newest that holds a record (a writer that starts again links to its last one)."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from google.api_core import exceptions as api_errors
from google.cloud.logging_v2.services.logging_service_v2 import LoggingServiceV2Client
from google.cloud.logging_v2.types import LogEntry
from google.protobuf.message import DecodeError
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from custos.audit.audit_pb2 import AuditRecord
from custos.audit.config import AuditConfig
from custos.audit.entries import MAX_REQUEST_BYTES, log_name, to_entries
from custos.audit.sources import spool_writers
from custos.audit.spool import (
    COMMITTED,
    HEADER,
    SHIPPED,
    SUFFIX,
    Mark,
    frame,
    next_frame,
    read_frames,
    read_mark,
    segment_path,
    segments,
)
from custos.errors import ConfigError

log = logging.getLogger(__name__)

# Worth retrying as they are: the service, the quota or the credentials may come back.
TRANSIENT = (
    api_errors.ServiceUnavailable,
    api_errors.DeadlineExceeded,
    api_errors.TooManyRequests,  # RESOURCE_EXHAUSTED: quota
    api_errors.InternalServerError,
    api_errors.Aborted,
    api_errors.Unauthenticated,
    api_errors.PermissionDenied,
)
QUARANTINE = "quarantine"


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
        self._log_name = self.destination = log_name(project, log_id)
        self._batch_entries = batch_entries
        self._max_backoff = max_backoff_seconds
        self._initial_backoff = initial_backoff_seconds
        self.shipped = 0  # records accepted since start
        self.quarantined = 0
        self.failures = 0  # transient errors met

    def run(self, stop: threading.Event, poll_seconds: float) -> None:
        while not stop.is_set():
            if not self.ship_once(stop):
                stop.wait(poll_seconds)

    def ship_once(self, stop: threading.Event | None = None) -> int:
        """Ships what every spool holds now, or until `stop`; the number of records Cloud
        Logging accepted (records set aside in quarantine are not among them)."""
        shipped = 0
        if not self._root.is_dir():
            return 0
        try:
            for directory in spool_writers(self._root):
                while (batch := self._read(directory)) is not None:
                    if stop is not None and stop.is_set():
                        return shipped
                    if batch.damage is not None:
                        damage = batch.damage
                        reason = f"{len(damage.payload)} bytes that are not whole records"
                        self._quarantine(directory, damage.payload, f"{damage.where}: {reason}")
                        self._save_mark(directory, damage.end)
                        continue
                    accepted = self._send(batch, stop)
                    if accepted is None:  # stopped before the batch was all in: send it again
                        return shipped
                    self._save_mark(directory, batch.records[-1].end)
                    shipped += accepted
                self._prune(directory)
            return shipped
        finally:
            self.shipped += shipped

    def _read(self, directory: Path) -> Batch | None:
        mark = read_mark(directory) or Mark(0, 0)
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

    def _send(self, batch: Batch, stop: threading.Event | None) -> int | None:
        """Writes a batch's records; how many were accepted, the others being set aside in
        quarantine, or None if `stop` came first."""
        entries: list[tuple[int, LogEntry]] = []
        refused: set[int] = set()
        for index, spooled in enumerate(batch.records):
            try:
                record = AuditRecord.FromString(spooled.payload)
            except DecodeError:
                self._set_aside(batch, index, "not an audit record", refused)
                continue
            entries.extend((index, e) for e in to_entries(record, spooled.payload, self._log_name))
        for request in _requests(entries):
            try:
                if not self._write([e for _, e in request], stop):
                    return None
            except api_errors.InvalidArgument:
                for index, entry in request:  # find the entry refused: send them one by one
                    if index in refused:  # another part of its record was refused already
                        continue
                    try:
                        if not self._write([entry], stop):
                            return None
                    except api_errors.InvalidArgument as exc:
                        reason = f"Cloud Logging refused it: {exc.message}"
                        self._set_aside(batch, index, reason, refused)
        return len(batch.records) - len(refused)

    def _set_aside(self, batch: Batch, index: int, reason: str, refused: set[int]) -> None:
        spooled = batch.records[index]
        self._quarantine(batch.directory, spooled.payload, f"{spooled.where}: {reason}")
        refused.add(index)

    def _write(self, entries: list[LogEntry], stop: threading.Event | None) -> bool:
        """Writes until accepted (True) or `stop` is set (False). The client's own retry is
        off: it would retry UNAVAILABLE out of sight of `failures` and of `stop`, for up to
        a minute, and then raise an error that is not one of TRANSIENT."""
        backoff = self._initial_backoff
        while True:
            try:
                self._client.write_log_entries(
                    log_name=self._log_name, entries=entries, retry=None, timeout=30
                )
                return True
            except TRANSIENT as exc:
                self.failures += 1
                log.warning("Cloud Logging write failed (%s); retrying", type(exc).__name__)
                if stop is not None and stop.wait(backoff):
                    return False
                if stop is None:
                    time.sleep(backoff)
                backoff = min(backoff * 2, self._max_backoff)

    def _quarantine(self, directory: Path, payload: bytes, reason: str) -> None:
        """Set aside with its reason, durably, before the mark moves past it."""
        self.quarantined += 1
        folder = self._root / QUARANTINE
        folder.mkdir(exist_ok=True)
        with open(folder / f"{directory.name}.frames", "ab") as out:
            out.write(frame(payload))
            out.flush()
            os.fsync(out.fileno())
        reasons = folder / f"{directory.name}.reasons"
        with open(reasons, "a") as out:
            out.write(f"{reason}\n")
        # The reason stays beside the record: the API's words may quote what the record
        # holds, and the process log is no place for that.
        log.error("an audit record was set aside in quarantine; why: %s", reasons.name)

    def _save_mark(self, directory: Path, mark: Mark) -> None:
        temporary = directory / f"{SHIPPED}.tmp"
        with open(temporary, "w") as out:
            out.write(f"{mark.segment} {mark.offset}\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, directory / SHIPPED)

    def _prune(self, directory: Path) -> None:
        mark = read_mark(directory) or Mark(0, 0)
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


class ShipperCollector(Collector):
    """The shipper's figures, read when Prometheus scrapes: nothing to keep in step."""

    def __init__(self, shipper: Shipper, spool_root: Path) -> None:
        self._shipper = shipper
        self._root = spool_root

    def collect(self) -> Iterator[Metric]:
        shipper = self._shipper
        yield CounterMetricFamily(
            "custos_audit_shipped_records", "Records Cloud Logging accepted.", shipper.shipped
        )
        yield CounterMetricFamily(
            "custos_audit_ship_failures",
            "Transient errors writing to Cloud Logging (each retried).",
            shipper.failures,
        )
        yield CounterMetricFamily(
            "custos_audit_quarantined_records",
            "Records Cloud Logging refused, set aside in quarantine.",
            shipper.quarantined,
        )
        yield GaugeMetricFamily(
            "custos_audit_spool_bytes",
            "Bytes of spool segments not yet deleted (shipped segments are).",
            sum(p.stat().st_size for p in self._root.glob(f"*/*{SUFFIX}")),
        )


def serve(config: AuditConfig, metrics_listen: str | None = None) -> None:
    """Ships until SIGTERM or SIGINT, then once more, so a pod that stops leaves its spool
    shipped if Cloud Logging takes it."""
    from custos.cloud_logging.clients import close, logging_client

    shipping = config.shipping
    if shipping is None:
        raise ConfigError("the audit configuration has no 'shipping' section")
    client = logging_client(shipping.endpoint)
    shipper = Shipper(
        config.spool_dir,
        client,
        shipping.project,
        shipping.log_name,
        shipping.batch_entries,
        shipping.max_backoff_seconds,
    )
    if metrics_listen is not None:
        registry = CollectorRegistry()
        registry.register(ShipperCollector(shipper, config.spool_dir))
        host, _, port = metrics_listen.rpartition(":")
        start_http_server(int(port), host, registry=registry)
    # Batch work, off every request's path: under contention the services go first.
    os.nice(10)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    log.info("shipping %s to %s", config.spool_dir, shipper.destination)
    try:
        shipper.run(stop, shipping.poll_seconds)
        last = threading.Event()
        deadline = threading.Timer(10, last.set)  # a last pass, bounded
        deadline.start()
        shipper.ship_once(last)
        deadline.cancel()
    finally:
        close(client)
        log.info("shipper stopping: %d records shipped", shipper.shipped)
