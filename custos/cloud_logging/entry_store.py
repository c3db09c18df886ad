"""The emulator's log entries: WriteLogEntries and ListLogEntries over plain protobuf
messages (the classes behind google-cloud-logging's proto-plus types), no gRPC here.

What it keeps of the real API's rules, because Custos' shipper depends on them:
- request defaults (log_name, resource, labels) fill what an entry leaves empty;
- a serialized entry over 256 KiB, or a request over 10 MB, is INVALID_ARGUMENT, and
  without `partial_success` one bad entry fails the whole request (nothing written);
- an entry with the insert id and timestamp of one already in its log is a duplicate,
  kept once (the real service drops such duplicates when queried; here at write time);
- a missing timestamp or insert id is supplied, in list order."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from google.cloud.logging_v2.types import ListLogEntriesResponse, LogEntry

from custos.cloud_logging import log_filter, paging
from custos.cloud_logging.api_error import invalid
from custos.cloud_logging.resource_names import parse_log_path, parse_project_path

MAX_ENTRY_BYTES = 256 * 1024  # the Logging API's limit on one LogEntry
MAX_REQUEST_BYTES = 10 * 1000 * 1000  # ... and on one entries.write request
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
ORDERS = {"": False, "timestamp asc": False, "timestamp desc": True}  # value: newest first

_LogEntryPb: Any = LogEntry.pb()
_ListResponsePb: Any = ListLogEntriesResponse.pb()


@dataclass(frozen=True)
class WriteStats:
    """What WriteLogEntries has seen: tests read retries and dedupe from it."""

    calls: int = 0  # every call received, failed ones included
    failed: int = 0  # answered with an error (injected or a refused request)
    entries_stored: int = 0
    duplicates: int = 0  # entries dropped as already stored


class EntryStore:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        # Written on gRPC worker threads, read on the test's thread.
        self._lock = threading.Lock()
        self._logs: dict[str, list[Any]] = {}
        self._keys: set[tuple[str, str, int, int]] = set()
        self._insert_ids = itertools.count(1)
        self._stats = WriteStats()

    def write(self, request: Any) -> None:
        """Store the entries of a WriteLogEntriesRequest message, or raise ApiError."""
        if request.ByteSize() > MAX_REQUEST_BYTES:
            raise invalid(f"Request size exceeds the limit of {MAX_REQUEST_BYTES} bytes")
        if not request.entries:
            raise invalid("entries: at least one log entry is required")
        with self._lock:
            entries, errors = [], []
            for index, raw in enumerate(request.entries):
                try:
                    entries.append(self._complete(request, raw))
                except ValueError as exc:
                    errors.append(f"entries[{index}]: {exc}")
            if errors and not request.partial_success:
                raise invalid("; ".join(errors))
            if not request.dry_run:
                self._keep(entries)
        if errors:  # partial_success: the valid entries are in, the call still fails
            raise invalid("; ".join(errors))

    def received(self) -> None:
        """Count a WriteLogEntries call as it arrives, before any fault delays it."""
        with self._lock:
            self._stats = replace(self._stats, calls=self._stats.calls + 1)

    def failed(self) -> None:
        with self._lock:
            self._stats = replace(self._stats, failed=self._stats.failed + 1)

    def list(self, request: Any) -> Any:
        """A ListLogEntriesResponse message for a ListLogEntriesRequest message."""
        if not request.resource_names:
            raise invalid("resource_names: at least one parent resource is required")
        try:
            projects = {parse_project_path(name) for name in request.resource_names}
            terms = log_filter.parse(request.filter)
        except ValueError as exc:  # FilterError is one
            raise invalid(str(exc)) from exc
        if request.order_by not in ORDERS:
            raise invalid('order_by must be "timestamp asc" or "timestamp desc"')
        if not 0 <= request.page_size <= MAX_PAGE_SIZE:
            raise invalid(f"page_size must be between 0 and {MAX_PAGE_SIZE}")
        with self._lock:
            found = [
                entry
                for name, entries in self._logs.items()
                if parse_log_path(name)[0] in projects
                for entry in entries
                if log_filter.matches(terms, entry)
            ]
        found.sort(key=_order_key, reverse=ORDERS[request.order_by])
        query = repr((sorted(projects), request.filter, request.order_by))
        size = request.page_size or DEFAULT_PAGE_SIZE
        entries, next_token = paging.page(found, size, request.page_token, query)
        return _ListResponsePb(entries=entries, next_page_token=next_token)

    def entries(self, log_name: str) -> list[Any]:
        """Copies of the entries stored in one log, in arrival order."""
        with self._lock:
            return [_copy(entry) for entry in self._logs.get(log_name, [])]

    def log_names(self) -> list[str]:
        with self._lock:
            return sorted(self._logs)

    def stats(self) -> WriteStats:
        with self._lock:
            return self._stats

    def _complete(self, request: Any, raw: Any) -> Any:
        """The entry as it will be stored: defaults applied, then checked."""
        entry = _copy(raw)
        if not entry.log_name:
            entry.log_name = request.log_name
        if not entry.log_name:
            raise ValueError("log_name is required (in the entry or the request)")
        parse_log_path(entry.log_name)
        if not entry.HasField("resource") and request.HasField("resource"):
            entry.resource.CopyFrom(request.resource)
        if not entry.resource.type:
            raise ValueError("resource is required (in the entry or the request)")
        for key, value in request.labels.items():
            entry.labels.setdefault(key, value)
        now = self._clock()
        if not entry.HasField("timestamp"):
            entry.timestamp.FromNanoseconds(int(now * 1e9))
        entry.receive_timestamp.FromNanoseconds(int(now * 1e9))
        if not entry.insert_id:
            # Zero-padded and increasing: entries that share a supplied timestamp sort in
            # the order they were written, as the real API promises.
            entry.insert_id = f"emu{next(self._insert_ids):016d}"
        if entry.ByteSize() > MAX_ENTRY_BYTES:
            raise ValueError(
                f"Log entry with size {entry.ByteSize()} bytes exceeds maximum size of "
                f"{MAX_ENTRY_BYTES} bytes"
            )
        return entry

    def _keep(self, entries: list[Any]) -> None:
        stored = duplicates = 0
        for entry in entries:
            key = (entry.log_name, entry.insert_id, entry.timestamp.seconds, entry.timestamp.nanos)
            if key in self._keys:
                duplicates += 1
                continue
            self._keys.add(key)
            self._logs.setdefault(entry.log_name, []).append(entry)
            stored += 1
        self._stats = replace(
            self._stats,
            entries_stored=self._stats.entries_stored + stored,
            duplicates=self._stats.duplicates + duplicates,
        )


def _order_key(entry: Any) -> tuple[int, int, str]:
    return entry.timestamp.seconds, entry.timestamp.nanos, entry.insert_id


def _copy(entry: Any) -> Any:
    copy = _LogEntryPb()
    copy.CopyFrom(entry)
    return copy
