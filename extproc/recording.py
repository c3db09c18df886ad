"""What ext_proc learns of an exchange for its audit record, message by message: who
asked what (the decision ext_authz handed over), the request, the status, and the answer
as the client got it, with a digest of the answer as the MCP server sent it."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import struct_pb2

from custos.audit.audit_pb2 import Body, Decision, Exchange, MaskedPath, Masking
from custos.audit.config import Bodies
from custos.audit.exchanges import AUDITED, calls, principal
from custos.audit.records import body
from custos.policy import Identity, McpCall
from custos.policy.inputs import CLIENT_HEADER
from custos.request_target import kept_target


@dataclass
class ExchangeRecording:
    bodies: Bodies
    query_values: Collection[str] = ()  # whose values the record keeps; the rest redacted
    started: float = field(default_factory=time.perf_counter)
    request_id: str = ""
    session_id: str = ""
    method: str = ""
    path: str = ""
    request_body: bytes = b""
    status: int = 0
    decision: Decision = field(default_factory=Decision)
    decision_id: str = ""
    source_address: str = ""
    audited_elsewhere: bool = False
    _decided: bool = False  # ext_authz's decision came along
    _response: bytearray = field(default_factory=bytearray)  # up to the cap
    _response_size: int = 0
    _response_digest: hashlib._Hash = field(default_factory=hashlib.sha256)
    _unmasked_digest: hashlib._Hash = field(default_factory=hashlib.sha256)

    def request_headers(self, headers: dict[str, str]) -> None:
        self.method = headers.get(":method", "")
        self.path = headers.get(":path", "")
        self.request_id = headers.get("x-request-id", "")
        self.session_id = headers.get("mcp-session-id", "")
        self.source_address = headers.get(CLIENT_HEADER, self.source_address)

    def decided(self, metadata: struct_pb2.Struct) -> None:
        self._decided = True
        fields = metadata.fields

        def text(key: str) -> str:
            return fields[key].string_value if key in fields else ""

        self.decision = Decision(
            effect=text("effect"),
            code=text("code"),
            rule=text("rule"),
            reason=text("reason"),
            policy=text("policy"),
        )
        self.decision_id = text("decision_id")
        self.source_address = text("source_address")
        self.audited_elsewhere = bool(text(AUDITED))
        if not self.request_id:  # a reply Envoy made itself: no request headers came here
            self.request_id = text("request_id")

    def attributes(self, attributes: Mapping[str, struct_pb2.Struct]) -> None:
        """Envoy's attributes of the stream (configured in the bootstrap): what a reply
        Envoy made itself is known by."""
        for values in attributes.values():
            fields = values.fields
            if not self.request_id and "request.id" in fields:
                self.request_id = fields["request.id"].string_value
            if not self.source_address and "source.address" in fields:
                self.source_address = fields["source.address"].string_value

    def response_headers(self, headers: dict[str, str]) -> None:
        self.status = int(headers.get(":status", "0") or 0)
        # An initialize answer names the session the client goes on with.
        self.session_id = self.session_id or headers.get("mcp-session-id", "")

    def upstream_chunk(self, unmasked: bytes) -> None:
        """The MCP server's bytes as they came, before masking is tried: a chunk that
        cannot be masked is in the digest all the same."""
        self._unmasked_digest.update(unmasked)

    def delivered(self, masked: bytes) -> None:
        """What went to the client."""
        self._response_digest.update(masked)
        self._response_size += len(masked)
        room = self.bodies.max_bytes - len(self._response) if self.bodies.response else 0
        if room > 0:
            self._response += masked[:room]

    def record(
        self,
        outcome: str,
        identity: Identity | None,
        mcp_calls: tuple[McpCall, ...],
        masked: dict[str, dict[str, Any]],
    ) -> Exchange:
        bodies = self.bodies
        decision = self.decision
        if not self._decided and not self.method:
            # No decision and no request seen here: Envoy answered itself, ext_authz being
            # down or late. (If ext_authz recorded a refusal and died before answering,
            # this is a second record of the request: Envoy's side of it.)
            decision = Decision(code="no_decision", reason="Envoy answered without a decision")
        return Exchange(
            request_id=self.request_id,
            session_id=self.session_id,
            decision_id=self.decision_id,
            principal=principal(identity),
            source_address=self.source_address,
            http_method=self.method,
            http_path=kept_target(self.path, self.query_values),
            calls=calls(mcp_calls),
            request=body(self.request_body, bodies.request, bodies.max_bytes),
            decision=decision,
            masking=_masking(masked),
            response=Body(
                text=bytes(self._response).decode("utf-8", errors="replace"),
                size=self._response_size,
                sha256=self._response_digest.digest(),
                truncated=len(self._response) < self._response_size,
            ),
            unmasked_response_sha256=self._unmasked_digest.digest(),
            status=self.status,
            latency_us=round((time.perf_counter() - self.started) * 1_000_000),
            outcome=outcome,
        )


def _masking(report: dict[str, dict[str, Any]]) -> Masking:
    """The masking report (`MaskReport.as_dict`) as the record keeps it."""
    masking = Masking()
    for entity, found in report.items():
        masking.counts[entity] = found["count"]
        masking.paths.append(MaskedPath(entity=entity, paths=found["paths"]))
    return masking
