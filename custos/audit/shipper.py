"""The shipper: its own process, one per pod. It reads every writer's spool and writes
the records to Cloud Logging in batches, and only then moves its mark.

- The mark (`shipped` in each writer's directory: segment and offset) is replaced
  atomically after a batch is accepted. A crash before that sends the batch again; the
  entries keep their insertId and timestamp, so Cloud Logging keeps them once.
- Transient errors (unavailable, deadline, quota, and credentials that may come back) are
  retried with backoff, the batch unchanged.
- A batch refused as invalid is sent entry by entry; an entry refused alone is set aside
  in `quarantine/` with the reason, never dropped, and shipping goes on.
- Segments wholly behind the mark, and not the one a writer is filling, are deleted."""

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
from custos.audit.entries import log_name, to_entries
from custos.audit.sources import spool_writers
from custos.audit.spool import SHIPPED, SUFFIX, frame, scan, segment_path, segments
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


@dataclass(frozen=True, order=True)
class Mark:
    segment: int
    offset: int


@dataclass
class Batch:
    directory: Path
    records: list[tuple[bytes, Mark]]  # (payload, the mark just after it)


class Shipper:
    def __init__(
        self,
        spool_root: Path,
        client: LoggingServiceV2Client,
        project: str,
        log_id: str,
        batch_entries: int = 500,
        max_backoff_seconds: float = 30.0,
    ) -> None:
        self._root = spool_root
        self._client = client
        self._log_name = self.destination = log_name(project, log_id)
        self._batch_entries = batch_entries
        self._max_backoff = max_backoff_seconds
        self.shipped = 0  # records accepted since start
        self.quarantined = 0
        self.failures = 0  # transient errors met

    def run(self, stop: threading.Event, poll_seconds: float) -> None:
        while not stop.is_set():
            if not self.ship_once(stop):
                stop.wait(poll_seconds)

    def ship_once(self, stop: threading.Event | None = None) -> int:
        """Ships what every spool holds now; the number of records shipped."""
        shipped = 0
        if not self._root.is_dir():
            return 0
        for directory in spool_writers(self._root):
            while (batch := self._read(directory)) is not None:
                self._send(batch, stop)
                if stop is not None and stop.is_set():
                    return shipped
                self._save_mark(directory, batch.records[-1][1])
                shipped += len(batch.records)
            self._prune(directory)
        self.shipped += shipped
        return shipped

    def _read(self, directory: Path) -> Batch | None:
        mark = read_mark(directory)
        records: list[tuple[bytes, Mark]] = []
        for number in segments(directory):
            if number < mark.segment:
                continue
            start = mark.offset if number == mark.segment else 0
            with open(segment_path(directory, number), "rb") as segment:
                segment.seek(start)
                result = scan(segment.read())
            for offset, payload in result.frames:
                records.append((payload, Mark(number, start + offset + len(frame(payload)))))
                if len(records) == self._batch_entries:
                    return Batch(directory, records)
            if result.end != result.size:
                # A write under way (or damage, which verify reports): wait for it.
                break
        return Batch(directory, records) if records else None

    def _send(self, batch: Batch, stop: threading.Event | None) -> None:
        entries: list[tuple[int, LogEntry]] = []
        for index, (payload, _) in enumerate(batch.records):
            try:
                record = AuditRecord.FromString(payload)
            except DecodeError:
                self._quarantine(batch.directory, payload, "not an audit record")
                continue
            entries.extend((index, e) for e in to_entries(record, payload, self._log_name))
        try:
            self._write([e for _, e in entries], stop)
        except api_errors.InvalidArgument:
            for index, entry in entries:  # find the entry refused: send them one by one
                try:
                    self._write([entry], stop)
                except api_errors.InvalidArgument as exc:
                    self._quarantine(batch.directory, batch.records[index][0], exc.message)

    def _write(self, entries: list[LogEntry], stop: threading.Event | None) -> None:
        backoff = 0.1
        while True:
            try:
                self._client.write_log_entries(log_name=self._log_name, entries=entries, timeout=30)
                return
            except TRANSIENT as exc:
                self.failures += 1
                log.warning("Cloud Logging write failed (%s); retrying", type(exc).__name__)
                if stop is not None and stop.wait(backoff):
                    return
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
        with open(folder / f"{directory.name}.reasons", "a") as out:
            out.write(f"{reason}\n")
        log.error("audit record set aside in quarantine: %s", reason)

    def _save_mark(self, directory: Path, mark: Mark) -> None:
        temporary = directory / f"{SHIPPED}.tmp"
        with open(temporary, "w") as out:
            out.write(f"{mark.segment} {mark.offset}\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, directory / SHIPPED)

    def _prune(self, directory: Path) -> None:
        mark = read_mark(directory)
        numbers = segments(directory)
        for number in numbers[:-1]:  # never the newest: its writer may be filling it
            path = segment_path(directory, number)
            done = number < mark.segment or (
                number == mark.segment and mark.offset >= path.stat().st_size
            )
            if done:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()


def read_mark(directory: Path) -> Mark:
    try:
        segment, offset = (directory / SHIPPED).read_text().split()
        return Mark(int(segment), int(offset))
    except FileNotFoundError:
        return Mark(0, 0)


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
