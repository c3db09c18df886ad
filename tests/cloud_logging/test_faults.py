"""Faults injected into WriteLogEntries, as the real client library sees them: its own
retry policy (UNAVAILABLE is retried, RESOURCE_EXHAUSTED and INVALID_ARGUMENT are not),
and a timeout that does not mean the entries were not written."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import grpc
import pytest
from google.api_core import exceptions
from google.cloud.logging_v2.services.logging_service_v2 import LoggingServiceV2Client
from google.cloud.logging_v2.types import LogEntry

from custos.cloud_logging.emulator import Emulator

LOG = "projects/custos-test/logs/custos-audit"
T0 = dt.datetime(2025, 3, 1, 12, 0, 0, tzinfo=dt.UTC)


def write(client: LoggingServiceV2Client, **options: Any) -> None:
    entry = LogEntry(insert_id="rec-1", timestamp=T0, text_payload="audit record")
    client.write_log_entries(
        request={"log_name": LOG, "resource": {"type": "global"}, "entries": [entry]},
        **options,
    )


def test_unavailable_is_retried_by_the_client_until_it_passes(
    emulator: Emulator, entries_api: LoggingServiceV2Client
) -> None:
    emulator.fail_writes(grpc.StatusCode.UNAVAILABLE, times=2)

    write(entries_api)

    stats = emulator.write_stats()
    assert (stats.calls, stats.failed, stats.entries_stored) == (3, 2, 1)
    assert len(emulator.entries(LOG)) == 1


def test_quota_exceeded_reaches_the_caller_unretried(
    emulator: Emulator, entries_api: LoggingServiceV2Client
) -> None:
    emulator.fail_writes(grpc.StatusCode.RESOURCE_EXHAUSTED)

    with pytest.raises(exceptions.ResourceExhausted, match="Quota exceeded"):
        write(entries_api)
    write(entries_api)  # the fault was for one call only

    assert emulator.write_stats().calls == 2
    assert len(emulator.entries(LOG)) == 1


def test_a_fault_without_a_count_lasts_until_cleared(
    emulator: Emulator, entries_api: LoggingServiceV2Client
) -> None:
    emulator.fail_writes(grpc.StatusCode.INVALID_ARGUMENT, times=None, message="bad batch")

    for _ in range(3):
        with pytest.raises(exceptions.InvalidArgument, match="bad batch"):
            write(entries_api)
    emulator.clear_faults()
    write(entries_api)

    assert emulator.write_stats().failed == 3
    assert len(emulator.entries(LOG)) == 1


def test_a_slow_write_times_out_for_the_client_but_is_stored(
    emulator: Emulator, entries_api: LoggingServiceV2Client
) -> None:
    emulator.delay_writes(0.5)

    with pytest.raises(exceptions.DeadlineExceeded):
        write(entries_api, retry=None, timeout=0.1)
    write(entries_api)  # the shipper's retry: same insert id and timestamp

    # The retry is stored at once; the first call's entry lands when its delay is over,
    # and is then the duplicate. Wait for that, bounded.
    deadline = time.monotonic() + 5
    while emulator.write_stats().duplicates == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    stats = emulator.write_stats()
    assert (stats.calls, stats.entries_stored, stats.duplicates) == (2, 1, 1)
    assert len(emulator.entries(LOG)) == 1


def test_a_fault_needs_an_error_and_a_positive_count(emulator: Emulator) -> None:
    with pytest.raises(ValueError):
        emulator.fail_writes(grpc.StatusCode.OK)
    with pytest.raises(ValueError):
        emulator.fail_writes(grpc.StatusCode.UNAVAILABLE, times=0)
