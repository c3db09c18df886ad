"""ext_authz's record of a refusal, with a real writer: the decision's metadata says the
refusal is on record only when it is, so ext_proc records it otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest
from envoy.service.auth.v3 import external_auth_pb2 as authz

from custos.audit.config import Bodies
from custos.audit.exchanges import AUDITED
from custos.audit.writer import AuditWriter
from custos.policy import HttpRequest
from extauthz.audit import record_refusal, refusal
from extauthz.errors import CredentialInQuery
from extauthz.pipeline import Verdict
from tests.audit.support import audit_config, fill_spool


def denial() -> authz.CheckResponse:
    return authz.CheckResponse(denied_response=authz.DeniedHttpResponse(body='{"error":{}}'))


REQUEST = HttpRequest("POST", "/mcp", {"x-request-id": "req-1"}, "10.0.0.7", "req-1")


@pytest.mark.parametrize(("full", "marked"), [(False, True), (True, False)])
async def test_a_refusal_is_marked_recorded_only_when_it_is(
    tmp_path: Path, full: bool, marked: bool
) -> None:
    config = audit_config(tmp_path, max_spool_bytes=65_536, when_full="serve")
    writer = await AuditWriter.open(config, "extauthz")
    if full:  # `when_full: serve`: the record is dropped, the refusal goes out
        fill_spool(tmp_path, writer)
    response = denial()
    verdict = Verdict("d-1", 401, "token_missing", "no token", request_id="req-1")
    await record_refusal(writer, verdict, REQUEST, b"{}", response)
    assert (AUDITED in response.dynamic_metadata.fields) is marked
    await writer.close()


def test_a_query_refused_for_a_credential_keeps_no_value_even_allow_listed() -> None:
    request = HttpRequest("POST", "/mcp?code=opaque-secret&page=2", {}, "10.0.0.7", "req-2")
    refused = Verdict(
        "d-2", 400, "credential_in_query", "a credential", error=CredentialInQuery("x")
    )
    allowed_values = frozenset({"code", "page"})
    record = refusal(refused, request, b"{}", denial(), Bodies(), allowed_values)
    assert record.http_path == "/mcp?code=[REDACTED]&page=[REDACTED]"
    other = Verdict("d-3", 401, "token_missing", "no token")
    record = refusal(other, request, b"{}", denial(), Bodies(), frozenset({"page"}))
    assert record.http_path == "/mcp?code=[REDACTED]&page=2"
