"""The audit record of a refused request. ext_authz is the last to see it: Envoy answers
the client itself. An allowed request is recorded by ext_proc once its answer is known."""

from __future__ import annotations

import logging
from collections.abc import Collection

from envoy.service.auth.v3 import external_auth_pb2 as authz

from custos.audit.audit_pb2 import Decision, Exchange
from custos.audit.config import Bodies
from custos.audit.exchanges import AUDITED, calls, principal
from custos.audit.records import body
from custos.audit.spool import SpoolError
from custos.audit.writer import AuditWriter
from custos.policy import HttpRequest
from custos.request_target import kept_target
from extauthz.errors import CredentialInQuery
from extauthz.pipeline import Verdict

log = logging.getLogger(__name__)


async def record_refusal(
    writer: AuditWriter,
    verdict: Verdict,
    request: HttpRequest,
    request_body: bytes,
    response: authz.CheckResponse,
) -> None:
    """Commits the record, then marks the response as recorded. If the record cannot be
    kept, the refusal stands and ext_proc records what it sees of the exchange instead."""
    config = writer.config
    record = refusal(verdict, request, request_body, response, config.bodies, config.query_values)
    try:
        written = await writer.record(record)
    except SpoolError as exc:
        log.error("refusal %s not recorded: %s", verdict.decision_id, exc)
        return
    if written:  # dropped (`when_full: serve`): ext_proc may still have room for it
        response.dynamic_metadata.update({AUDITED: writer.name})


def refusal(
    verdict: Verdict,
    request: HttpRequest,
    request_body: bytes,
    response: authz.CheckResponse,
    bodies: Bodies,
    query_values: Collection[str] = (),
) -> Exchange:
    denied = response.denied_response
    # A query refused for a credential keeps no value, allow-listed or not.
    kept = () if isinstance(verdict.error, CredentialInQuery) else query_values
    return Exchange(
        request_id=verdict.request_id,
        session_id=request.headers.get("mcp-session-id", ""),
        decision_id=verdict.decision_id,
        principal=principal(verdict.identity),
        source_address=request.source_address,
        http_method=request.method,
        http_path=kept_target(request.path, kept),
        calls=calls(verdict.mcp.calls),
        request=body(request_body, bodies.request, bodies.max_bytes),
        decision=Decision(
            effect="deny",
            code=verdict.code,
            rule=verdict.rule,
            reason=verdict.reason,
            policy=verdict.policy_digest[:12],  # as in the metadata ext_proc gets
        ),
        response=body(denied.body.encode(), bodies.response, bodies.max_bytes),
        status=verdict.status,
        latency_us=round(verdict.elapsed * 1_000_000),
        outcome="complete",
    )
