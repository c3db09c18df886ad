"""ext_proc's audit records, through the servicer with a real writer and spool: the record
is on disk before the answer's last message goes out, and with the spool full the
exchange is refused at its request headers, before the MCP server is asked."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from envoy.config.core.v3 import base_pb2
from envoy.service.ext_proc.v3 import external_processor_pb2 as ext_proc
from google.protobuf import struct_pb2

from custos.audit.audit_pb2 import AuditRecord
from custos.audit.spool import scan, segment_path, segments
from custos.audit.writer import AuditWriter
from extproc.exchange import AUTHZ_NAMESPACE
from extproc.servicer import ExternalProcessorServicer
from tests.audit.support import audit_config, exchange
from tests.extproc.test_servicer import answer, json_headers, masker, responses


def request_headers() -> ext_proc.ProcessingRequest:
    pairs = {":method": "POST", ":path": "/mcp", "x-request-id": "req-7"}
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


def request_body() -> ext_proc.ProcessingRequest:
    call = b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_note"}}'
    return ext_proc.ProcessingRequest(request_body=ext_proc.HttpBody(body=call, end_of_stream=True))


def spooled(tmp_path: Path) -> list[AuditRecord]:
    directory = tmp_path / "spool" / "extproc-test"
    return [
        AuditRecord.FromString(payload)
        for number in segments(directory)
        for _, payload in scan(segment_path(directory, number).read_bytes()).frames
    ]


async def test_the_record_holds_what_the_client_got(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = await AuditWriter.open(audit_config(tmp_path), "extproc")
    servicer = ExternalProcessorServicer(masker(monkeypatch), audit=writer)
    upstream = answer(1)
    out = await responses(servicer, [request_headers(), request_body(), json_headers(), upstream])
    (record,) = [r.exchange for r in spooled(tmp_path) if r.HasField("exchange")]
    sent = out[-1].response_body.response.body_mutation.body
    assert (record.request_id, record.principal.subject, record.decision.rule) == (
        "req-7",
        "alice",
        "readers",
    )
    assert record.response.text.encode() == sent and "123-45-6789" not in record.response.text
    assert record.unmasked_response_sha256 == hashlib.sha256(upstream.response_body.body).digest()
    assert record.request.text.startswith('{"jsonrpc"')
    assert record.masking.counts["ssn"] == 1 and record.outcome == "complete"
    await writer.close()


async def test_a_full_spool_refuses_before_the_server_is_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = audit_config(tmp_path, max_spool_bytes=65_536)
    writer = await AuditWriter.open(config, "extproc")
    (tmp_path / "spool" / "extproc-test" / "000000000000.seg").write_bytes(bytes(70_000))
    writer.measure_spool()
    servicer = ExternalProcessorServicer(masker(monkeypatch), audit=writer)
    (out,) = await responses(servicer, [request_headers()])
    assert out.immediate_response.status.code == 503
    assert b"could not be recorded" in out.immediate_response.body
    await writer.close()


async def test_with_when_full_serve_the_record_is_dropped_and_counted(tmp_path: Path) -> None:
    events: list[str] = []
    config = audit_config(tmp_path, max_spool_bytes=65_536, when_full="serve")
    writer = await AuditWriter.open(config, "extproc", events.append)
    (tmp_path / "spool" / "extproc-test" / "000000000000.seg").write_bytes(bytes(70_000))
    writer.measure_spool()
    assert not writer.refuses
    await writer.record(exchange("req-1"))
    assert events == ["dropped_full"]
    assert not [r for r in spooled(tmp_path) if r.HasField("exchange")]
    await writer.close()
