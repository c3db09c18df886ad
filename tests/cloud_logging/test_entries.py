"""Writing and reading log entries: the real client library against the emulator."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from google.api_core import exceptions
from google.cloud.logging_v2.services.logging_service_v2 import LoggingServiceV2Client
from google.cloud.logging_v2.types import LogEntry

from custos.cloud_logging.emulator import Emulator

PROJECT = "custos-test"
LOG = f"projects/{PROJECT}/logs/custos-audit"
T0 = dt.datetime(2025, 3, 1, 12, 0, 0, tzinfo=dt.UTC)


def record(n: int, **fields: Any) -> LogEntry:
    """The n-th audit record: its own insert id and a timestamp n seconds after T0."""
    return LogEntry(
        insert_id=f"rec-{n:04d}",
        timestamp=T0 + dt.timedelta(seconds=n),
        json_payload={"seq": n},
        **fields,
    )


def write(client: LoggingServiceV2Client, entries: list[LogEntry], **request: Any) -> None:
    client.write_log_entries(
        request={"log_name": LOG, "resource": {"type": "global"}, "entries": entries, **request}
    )


def listed(client: LoggingServiceV2Client, **request: Any) -> list[LogEntry]:
    return list(
        client.list_log_entries(request={"resource_names": [f"projects/{PROJECT}"], **request})
    )


def test_round_trip_in_pages_oldest_first(
    emulator: Emulator, entries_api: LoggingServiceV2Client
) -> None:
    write(entries_api, [record(n) for n in (3, 1, 4, 0, 2)])

    pages = list(
        entries_api.list_log_entries(
            request={
                "resource_names": [f"projects/{PROJECT}"],
                "filter": f'logName="{LOG}"',
                "page_size": 2,
            }
        ).pages
    )

    assert [len(page.entries) for page in pages] == [2, 2, 1]
    assert [page.next_page_token != "" for page in pages] == [True, True, False]
    got = [entry for page in pages for entry in page.entries]
    assert [e.insert_id for e in got] == [f"rec-{n:04d}" for n in range(5)]
    assert got[0].json_payload["seq"] == 0
    assert got[0].timestamp == T0
    assert got[0].receive_timestamp  # the server stamps when it received each entry


def test_newest_first_on_request(entries_api: LoggingServiceV2Client) -> None:
    write(entries_api, [record(n) for n in range(3)])

    got = listed(entries_api, order_by="timestamp desc")

    assert [e.insert_id for e in got] == ["rec-0002", "rec-0001", "rec-0000"]


def test_same_insert_id_and_timestamp_is_kept_once_but_every_write_is_counted(
    emulator: Emulator, entries_api: LoggingServiceV2Client
) -> None:
    write(entries_api, [record(0), record(1)])
    write(entries_api, [record(1), record(2)])  # a retried batch overlapping the first

    assert [e.insert_id for e in listed(entries_api)] == ["rec-0000", "rec-0001", "rec-0002"]
    stats = emulator.write_stats()
    assert (stats.calls, stats.entries_stored, stats.duplicates) == (2, 3, 1)


def test_same_insert_id_with_another_timestamp_is_another_entry(
    entries_api: LoggingServiceV2Client,
) -> None:
    later = record(0)
    later.timestamp = T0 + dt.timedelta(minutes=5)
    write(entries_api, [record(0), later])

    assert len(listed(entries_api, filter='insertId="rec-0000"')) == 2


def test_request_defaults_fill_what_entries_leave_empty(
    emulator: Emulator, entries_api: LoggingServiceV2Client
) -> None:
    other_log = f"projects/{PROJECT}/logs/other"
    own = record(1, log_name=other_log, resource={"type": "k8s_container"}, labels={"a": "own"})
    write(entries_api, [record(0), own], labels={"a": "default", "b": "default"})

    [plain] = emulator.entries(LOG)
    [kept] = emulator.entries(other_log)
    assert (plain.resource.type, dict(plain.labels)) == ("global", {"a": "default", "b": "default"})
    assert (kept.resource.type, dict(kept.labels)) == (
        "k8s_container",
        {"a": "own", "b": "default"},
    )


def test_missing_timestamp_and_insert_id_are_supplied_in_list_order(
    emulator: Emulator, entries_api: LoggingServiceV2Client
) -> None:
    write(entries_api, [LogEntry(text_payload=str(n)) for n in range(3)])

    stored = emulator.entries(LOG)
    assert all(e.insert_id and e.timestamp for e in stored)
    assert [e.text_payload for e in listed(entries_api)] == ["0", "1", "2"]


def test_filter_on_insert_id_and_timestamps(entries_api: LoggingServiceV2Client) -> None:
    write(entries_api, [record(n) for n in range(6)])
    since = (T0 + dt.timedelta(seconds=2)).isoformat().replace("+00:00", "Z")
    until = (T0 + dt.timedelta(seconds=4)).isoformat()

    window = listed(
        entries_api, filter=f'logName="{LOG}" AND timestamp>="{since}" AND timestamp<"{until}"'
    )
    one = listed(entries_api, filter=f'logName="{LOG}" insertId="rec-0005"')
    other_log = listed(entries_api, filter=f'logName="projects/{PROJECT}/logs/nope"')

    assert [e.insert_id for e in window] == ["rec-0002", "rec-0003"]
    assert [e.insert_id for e in one] == ["rec-0005"]
    assert other_log == []


def test_entries_of_a_project_not_listed_are_not_returned(
    entries_api: LoggingServiceV2Client,
) -> None:
    write(entries_api, [record(0)])

    got = list(entries_api.list_log_entries(request={"resource_names": ["projects/elsewhere"]}))

    assert got == []


@pytest.mark.parametrize(
    "query",
    [
        f'logName="{LOG}" OR insertId="x"',
        'NOT insertId="x"',
        "severity>=ERROR",
        'logName:"custos"',
        'timestamp>="yesterday"',
    ],
)
def test_filters_outside_the_subset_are_refused_not_guessed(
    entries_api: LoggingServiceV2Client, query: str
) -> None:
    with pytest.raises(exceptions.InvalidArgument):
        listed(entries_api, filter=query)


def test_a_page_token_is_only_good_for_its_own_query(entries_api: LoggingServiceV2Client) -> None:
    write(entries_api, [record(n) for n in range(3)])
    first = entries_api.list_log_entries(
        request={"resource_names": [f"projects/{PROJECT}"], "page_size": 1}
    )
    token = next(iter(first.pages)).next_page_token

    with pytest.raises(exceptions.InvalidArgument):
        listed(entries_api, page_token=token, order_by="timestamp desc")
    with pytest.raises(exceptions.InvalidArgument):
        listed(entries_api, page_size=1001)


def test_an_entry_over_256_kib_is_refused_and_nothing_of_its_batch_is_written(
    emulator: Emulator, entries_api: LoggingServiceV2Client
) -> None:
    big = LogEntry(insert_id="big", timestamp=T0, text_payload="x" * (256 * 1024))

    with pytest.raises(exceptions.InvalidArgument, match="exceeds maximum size"):
        write(entries_api, [record(0), big])

    assert emulator.entries(LOG) == []
    assert emulator.write_stats().failed == 1


def test_an_entry_a_little_under_256_kib_is_accepted(
    emulator: Emulator, entries_api: LoggingServiceV2Client
) -> None:
    # The limit applies to the whole serialized entry (names, resource, timestamps too):
    # a payload 200 bytes short of it leaves room for those.
    near = LogEntry(insert_id="near", timestamp=T0, text_payload="x" * (256 * 1024 - 200))

    write(entries_api, [near])

    [stored] = emulator.entries(LOG)
    assert 256 * 1024 - 200 < LogEntry.pb(stored).ByteSize() <= 256 * 1024


def test_partial_success_writes_the_valid_entries_and_still_fails(
    emulator: Emulator, entries_api: LoggingServiceV2Client
) -> None:
    big = LogEntry(insert_id="big", timestamp=T0, text_payload="x" * (300 * 1024))

    with pytest.raises(exceptions.InvalidArgument, match=r"entries\[1\]"):
        write(entries_api, [record(0), big], partial_success=True)

    assert [e.insert_id for e in emulator.entries(LOG)] == ["rec-0000"]


@pytest.mark.parametrize(
    "log_name",
    [
        "projects/custos-test/logs/a/b",  # the log id's '/' must be URL-encoded
        "projects/custos-test/logs/bad%20space",  # ' ' is not allowed, even encoded
        "projects/custos-test/custos-audit",
        "custos-audit",
    ],
)
def test_malformed_log_names_are_refused(
    entries_api: LoggingServiceV2Client, log_name: str
) -> None:
    with pytest.raises(exceptions.InvalidArgument):
        write(entries_api, [record(0)], log_name=log_name)


def test_an_encoded_slash_in_a_log_id_is_accepted(
    emulator: Emulator, entries_api: LoggingServiceV2Client
) -> None:
    name = f"projects/{PROJECT}/logs/custos.example%2Faudit"
    write(entries_api, [record(0)], log_name=name)
    assert len(emulator.entries(name)) == 1


def test_dry_run_validates_without_storing(
    emulator: Emulator, entries_api: LoggingServiceV2Client
) -> None:
    write(entries_api, [record(0)], dry_run=True)
    assert emulator.log_names() == []
