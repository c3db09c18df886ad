"""ext_proc's audit records, through the servicer with a real writer and spool: the record
is on disk before the answer's last message goes out (for a streamed answer, before the
event carrying the JSON-RPC response does), and with the spool full the exchange is
refused at its request headers, before the MCP server is asked."""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from envoy.config.core.v3 import base_pb2
from envoy.service.ext_proc.v3 import external_processor_pb2 as ext_proc
from google.protobuf import struct_pb2

from custos.audit.audit_pb2 import Exchange as ExchangeRecord
from custos.audit.writer import AuditWriter
from extproc.exchange import AUTHZ_NAMESPACE
from extproc.servicer import ExternalProcessorServicer
from tests.audit.support import WRITER, audit_config, exchange, fill_spool, records_in
from tests.extproc.test_servicer import NOTE, answer, json_headers, masker, responses


@pytest.fixture
async def audited(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[ExternalProcessorServicer]:
    """The servicer with a writer on a spool in `tmp_path`, closed after the test."""
    writer = await AuditWriter.open(audit_config(tmp_path), "extproc")
    yield ExternalProcessorServicer(masker(monkeypatch), audit=writer)
    await writer.close()


def request_headers(method: str = "POST") -> ext_proc.ProcessingRequest:
    pairs = {":method": method, ":path": "/mcp", "x-request-id": "req-7"}
    headers = [base_pb2.HeaderValue(key=k, raw_value=v.encode()) for k, v in pairs.items()]
    decision = struct_pb2.Struct()
    decision.update(
        {
            "effect": "allow",
            "code": "allow",
            "rule": "readers",
            "mcp_methods": ["tools/call"],
            "identity": {"issuer": "https://idp", "subject": "alice", "groups": ["care"]},
        }
    )
    return ext_proc.ProcessingRequest(
        request_headers=ext_proc.HttpHeaders(headers=base_pb2.HeaderMap(headers=headers)),
        metadata_context=base_pb2.Metadata(filter_metadata={AUTHZ_NAMESPACE: decision}),
    )


def request_body(*ids: int | str) -> ext_proc.ProcessingRequest:
    """A tools/call with id 1, or a batch of one call per id given."""
    calls = [{"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": {}} for i in ids]
    call = (
        json.dumps(calls).encode()
        if ids
        else b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_note"}}'
    )
    return ext_proc.ProcessingRequest(request_body=ext_proc.HttpBody(body=call, end_of_stream=True))


def sse_headers() -> ext_proc.ProcessingRequest:
    pairs = {":status": "200", "content-type": "text/event-stream"}
    headers = [base_pb2.HeaderValue(key=k, raw_value=v.encode()) for k, v in pairs.items()]
    return ext_proc.ProcessingRequest(
        response_headers=ext_proc.HttpHeaders(headers=base_pb2.HeaderMap(headers=headers))
    )


PROGRESS = {"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progress": 1}}


def result(call_id: int | str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": call_id, "result": {"content": [{"text": NOTE}]}}


def events(*messages: dict[str, Any], end: bool = False) -> ext_proc.ProcessingRequest:
    data = "".join(f"event: message\ndata: {json.dumps(m)}\n\n" for m in messages).encode()
    return ext_proc.ProcessingRequest(response_body=ext_proc.HttpBody(body=data, end_of_stream=end))


def raw_chunk(data: bytes, end: bool = False) -> ext_proc.ProcessingRequest:
    return ext_proc.ProcessingRequest(response_body=ext_proc.HttpBody(body=data, end_of_stream=end))


def events_in(stream: bytes) -> list[dict[str, Any]]:
    """The JSON-RPC messages of an SSE stream's data lines."""
    return [
        json.loads(line[5:]) for line in stream.decode().splitlines() if line.startswith("data:")
    ]


def sent(response: ext_proc.ProcessingResponse) -> bytes:
    return response.response_body.response.body_mutation.body


async def fed(*requests: ext_proc.ProcessingRequest) -> AsyncIterator[ext_proc.ProcessingRequest]:
    for request in requests:
        yield request


async def step_by_step(
    servicer: ExternalProcessorServicer,
    requests: AsyncIterator[ext_proc.ProcessingRequest],
    tmp_path: Path,
) -> list[tuple[ext_proc.ProcessingResponse, list[ExchangeRecord]]]:
    """Each message that went to Envoy, with the records on disk when it went: Envoy
    passes a message on to the client as soon as it has it."""
    out = []
    async for response in servicer.Process(requests, None):  # type: ignore[arg-type]
        out.append((response, exchange_records(tmp_path)))
    return out


def exchange_records(tmp_path: Path) -> list[ExchangeRecord]:
    return [r.exchange for r in records_in(tmp_path / "spool" / WRITER) if r.HasField("exchange")]


async def test_the_record_holds_what_the_client_got(
    tmp_path: Path, audited: ExternalProcessorServicer
) -> None:
    servicer = audited
    upstream = answer(1)
    out = await responses(servicer, [request_headers(), request_body(), json_headers(), upstream])
    (record,) = exchange_records(tmp_path)
    assert (record.request_id, record.principal.subject, record.decision.rule) == (
        "req-7",
        "alice",
        "readers",
    )
    assert record.response.text.encode() == sent(out[-1])
    assert "123-45-6789" not in record.response.text
    assert record.unmasked_response_sha256 == hashlib.sha256(upstream.response_body.body).digest()
    assert record.request.text.startswith('{"jsonrpc"')
    assert record.masking.counts["ssn"] == 1 and record.outcome == "complete"


async def test_a_full_spool_refuses_before_the_server_is_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = audit_config(tmp_path, max_spool_bytes=65_536)
    writer = await AuditWriter.open(config, "extproc")
    fill_spool(tmp_path, writer)
    servicer = ExternalProcessorServicer(masker(monkeypatch), audit=writer)
    (out,) = await responses(servicer, [request_headers()])
    assert out.immediate_response.status.code == 503
    assert b"could not be recorded" in out.immediate_response.body
    await writer.close()


async def test_with_when_full_serve_the_record_is_dropped_and_counted(tmp_path: Path) -> None:
    events: list[str] = []
    config = audit_config(tmp_path, max_spool_bytes=65_536, when_full="serve")
    writer = await AuditWriter.open(config, "extproc", events.append)
    fill_spool(tmp_path, writer)
    assert not writer.refuses
    await writer.record(exchange("req-1"))
    assert events == ["dropped_full"]
    assert not exchange_records(tmp_path)
    await writer.close()


async def test_a_streamed_answer_is_on_record_before_its_response_goes_out(
    tmp_path: Path, audited: ExternalProcessorServicer
) -> None:
    servicer = audited
    requests = fed(
        request_headers(),
        request_body(),
        sse_headers(),
        events(PROGRESS),
        events(result(1)),
        raw_chunk(b"", end=True),
    )
    *_, progress, response, end = await step_by_step(servicer, requests, tmp_path)
    # The progress event streams as it comes, before anything is recorded...
    assert b"notifications/progress" in sent(progress[0]) and progress[1] == []
    # ...and the event carrying the response goes out with its record already on disk.
    (record,) = response[1]
    assert b'"id":1' in sent(response[0]) and b"123-45-6789" not in sent(response[0])
    assert (record.outcome, record.status) == ("complete", 200)
    assert record.response.text.encode() == sent(progress[0]) + sent(response[0])
    assert end[1] == [record]  # the stream's end records nothing more


async def test_a_batch_is_recorded_when_its_last_response_comes(
    tmp_path: Path, audited: ExternalProcessorServicer
) -> None:
    servicer = audited
    requests = fed(
        request_headers(),
        request_body(1, "two"),
        sse_headers(),
        events(result(1)),
        events(PROGRESS, result("two")),
        raw_chunk(b"", end=True),
    )
    *_, first, last, end = await step_by_step(servicer, requests, tmp_path)
    # The first response is held back with what follows it, not sent before the record.
    assert sent(first[0]) == b""
    (record,) = last[1]
    assert record.outcome == "complete" and b'"id":"two"' in sent(last[0])
    assert b'"id":1' in sent(last[0])
    assert record.response.text.encode() == sent(last[0])
    assert end[1] == [record]


async def test_a_response_to_a_request_the_stream_did_not_carry_breaks_it_off(
    tmp_path: Path, audited: ExternalProcessorServicer
) -> None:
    # The MCP SDK routes by id: a response that took the wrong stream is another caller's.
    requests = fed(
        request_headers(),
        request_body(1),
        sse_headers(),
        events(PROGRESS),
        events(result("other")),
        raw_chunk(b"", end=True),
    )
    *_, progress, other, end = await step_by_step(audited, requests, tmp_path)
    assert b"notifications/progress" in sent(progress[0])
    (error,) = events_in(sent(other[0]))  # the client's own request gets an error instead
    assert error["id"] == 1 and "error" in error and b"Okafor" not in sent(other[0])
    (record,) = other[1]
    assert record.outcome == "refused" and b'"other"' not in record.response.text.encode()
    assert sent(end[0]) == b""  # what the server sends after it is dropped


async def test_an_error_with_a_null_id_is_held_until_the_stream_ends(
    tmp_path: Path, audited: ExternalProcessorServicer
) -> None:
    # The server could not read one call of the batch: its error has a null id, and the
    # other call is answered. Neither goes out before the record.
    error = {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": "bad"}}
    requests = fed(
        request_headers(),
        request_body(1, 2),
        sse_headers(),
        events(result(1)),
        events(error),
        raw_chunk(b"", end=True),
    )
    *_, answered, failed, end = await step_by_step(audited, requests, tmp_path)
    assert sent(answered[0]) == sent(failed[0]) == b""
    (record,) = end[1]
    assert record.outcome == "complete" and b"Okafor" not in sent(end[0])
    assert b'"id":1' in sent(end[0]) and b'"id":null' in sent(end[0])


async def test_a_response_that_cannot_be_recorded_never_reaches_the_client(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = audit_config(tmp_path, max_spool_bytes=65_536)
    writer = await AuditWriter.open(config, "extproc")
    servicer = ExternalProcessorServicer(masker(monkeypatch), audit=writer)

    async def requests() -> AsyncIterator[ext_proc.ProcessingRequest]:
        for request in (request_headers(), request_body(), sse_headers(), events(PROGRESS)):
            yield request
        fill_spool(tmp_path, writer)  # the spool fills up while the tool runs
        yield events(result(1))

    *_, progress, response = await step_by_step(servicer, requests(), tmp_path)
    assert b"notifications/progress" in sent(progress[0])
    # The 200 is out: the client's request is answered by an error, not by the record.
    (error,) = events_in(sent(response[0]))
    assert error["id"] == 1 and error["error"]["message"] == "the exchange could not be recorded"
    assert b"Okafor" not in sent(response[0])
    assert response[1] == []
    await writer.close()


async def test_a_get_stream_is_recorded_when_it_ends(
    tmp_path: Path, audited: ExternalProcessorServicer
) -> None:
    # Server-initiated: no request of the client's is waiting for an answer in it.
    servicer = audited
    requests = fed(
        request_headers("GET"), sse_headers(), events(result(1)), raw_chunk(b"", end=True)
    )
    *_, event, end = await step_by_step(servicer, requests, tmp_path)
    assert event[1] == []
    (record,) = end[1]
    assert (record.http_method, record.outcome) == ("GET", "complete")


async def test_a_refused_answer_keeps_the_digest_of_what_the_server_sent(
    tmp_path: Path, audited: ExternalProcessorServicer
) -> None:
    servicer = audited
    pairs = {":status": "200", "content-type": "application/json", "content-encoding": "gzip"}
    headers = ext_proc.ProcessingRequest(
        response_headers=ext_proc.HttpHeaders(
            headers=base_pb2.HeaderMap(
                headers=[
                    base_pb2.HeaderValue(key=k, raw_value=v.encode()) for k, v in pairs.items()
                ]
            )
        )
    )
    broken = gzip.compress(answer(1).response_body.body)[:-12]  # cut short: cannot be read
    out = await responses(
        servicer, [request_headers(), request_body(), headers, raw_chunk(broken, end=True)]
    )
    assert out[-1].immediate_response.status.code == 502
    (record,) = exchange_records(tmp_path)
    assert (record.outcome, record.status) == ("refused", 502)
    assert record.unmasked_response_sha256 == hashlib.sha256(broken).digest()
    assert record.response.text.encode() == out[-1].immediate_response.body


async def test_a_stream_broken_off_midway_is_recorded_as_the_client_saw_it(
    tmp_path: Path, audited: ExternalProcessorServicer
) -> None:
    servicer = audited
    bad = b"event: message\ndata: \xff\n\n"  # not UTF-8: cannot be masked
    progress = events(PROGRESS)
    requests = fed(request_headers(), request_body(), sse_headers(), progress, raw_chunk(bad))
    *_, (went, _), (refused, records) = await step_by_step(servicer, requests, tmp_path)
    # The 200 and the progress event were out: the request is answered by an error event,
    # and nothing more of the server's stream goes out.
    (error,) = events_in(sent(refused))
    assert error["id"] == 1 and error["error"]["data"]["reason"] == "sse_not_utf8"
    (record,) = records
    assert (record.outcome, record.status) == ("refused", 200)
    assert record.response.text.encode() == sent(went) + sent(refused)
    server_sent = progress.response_body.body + bad
    assert record.unmasked_response_sha256 == hashlib.sha256(server_sent).digest()


async def test_a_stream_cut_short_is_on_record_before_the_shutdown_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The client goes away in the middle of a GET stream; then ext_proc shuts down. The
    # late record of the stream must land before the chain's last checkpoint.
    writer = await AuditWriter.open(audit_config(tmp_path), "extproc")
    servicer = ExternalProcessorServicer(masker(monkeypatch), audit=writer)
    messages = fed(request_headers("GET"), sse_headers(), events(result(1)))
    async for _ in servicer.Process(messages, None):  # type: ignore[arg-type]
        pass  # the messages run out: Envoy closed the stream before its end
    await servicer.settle()
    await writer.close()
    records = records_in(tmp_path / "spool" / WRITER)
    assert records[-1].checkpoint.reason == "shutdown"
    (cut,) = exchange_records(tmp_path)
    assert (cut.http_method, cut.outcome) == ("GET", "incomplete")


async def test_a_stream_refused_midway_is_ended_not_left_open(
    tmp_path: Path, audited: ExternalProcessorServicer
) -> None:
    # The server's own stream (GET): no request awaits an answer, and it may run for hours.
    bad = b"event: message\ndata: \xff\n\n"
    requests = fed(request_headers("GET"), sse_headers(), raw_chunk(bad), events(PROGRESS))
    *_, (refused, _), (after, _) = await step_by_step(audited, requests, tmp_path)
    (error,) = events_in(sent(refused))
    assert error["id"] is None and "error" in error
    assert after.HasField("immediate_response")  # Envoy ends the stream; nothing passes
