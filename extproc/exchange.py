"""One HTTP exchange as ext_proc sees it: a plain state machine from Envoy's
ProcessingRequests to ProcessingResponses, with no server in it.

- request headers: `accept-encoding` is removed, so the MCP server answers uncompressed
  and nothing can slip past the masker inside a compressed body;
- response headers: the body mode is chosen from the content type (buffered for JSON,
  streamed for `text/event-stream`, so SSE events reach the client as they come); the
  length goes, since masking changes it; an encoding is decoded (gzip) or refused; a
  header in which a detector finds PHI is removed;
- request body: its requests' ids are held in flight in their session (a second request
  with one of them is refused with 409), and kept for the answer to be checked against;
- response body: masked, whole or event by event; it may hold the responses to this
  stream's own requests only, once each; in a stream answering a POST of JSON-RPC
  requests, the responses are looked for, so the servicer can record the exchange before
  the last of them goes out;
- anything that cannot be masked ends the exchange with a 502 carrying no body of the
  MCP server's but a JSON-RPC error (or, once a stream's 200 is out, an error event for
  each request still unanswered, and the end of the stream), and an unknown message is
  an error, never a pass-through."""

from __future__ import annotations

import re
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from envoy.config.core.v3 import base_pb2
from envoy.extensions.filters.http.ext_proc.v3 import processing_mode_pb2 as modes
from envoy.service.ext_proc.v3 import external_processor_pb2 as ext_proc
from envoy.type.v3 import http_status_pb2
from google.protobuf import struct_pb2

from custos.audit import audit_pb2
from custos.audit.spool import SpoolError
from custos.errors import CustosError, LimitExceeded
from custos.policy import HttpRequest, Identity, McpCall, PolicyInput
from extproc.in_flight import Claim, IdInFlight, InFlight, InFlightFull
from extproc.masking import json_codec
from extproc.masking.answer import AnswerMasking
from extproc.masking.engine import BodyTooLarge, Masker, MaskingError, MaskReport
from extproc.metrics import MaskingMetrics
from extproc.recording import ExchangeRecording
from extproc.sse import SseRewriter
from extproc.tool_filter import ToolFilter, identity_from

Mode = modes.ProcessingMode

AUTHZ_NAMESPACE = "envoy.filters.http.ext_authz"
# Handshakes: their answers carry protocol versions (which look like dates) and no
# patient data. Listings are masked (resource names may name patients), except that
# tools/list goes through the tool filter, whose schemas masking would break.
PROTOCOL_METHODS = frozenset({"initialize", "ping", "server/discover"})
# Response headers the protocol needs as they are, that carry no patient data, and that a
# detector might misread (a session id of digits looks like a phone number).
_CHARSET = re.compile(r"charset\s*=\s*([^;\s]*)", re.IGNORECASE)
_PROTOCOL_HEADERS = frozenset(
    {
        *("content-type", "content-length", "content-encoding", "transfer-encoding"),
        *("connection", "date", "server", "cache-control", "vary", "x-request-id"),
        *("mcp-session-id", "mcp-protocol-version", "x-envoy-upstream-service-time"),
        "www-authenticate",  # ext_authz's 401: the URL of the resource metadata document
    }
)


# A JSON-RPC id a response can be matched by (MCP forbids null; a bool is no id).
_Id = str | int | float
# An answer's JSON masked, with the ids of the responses in it and whether it holds any.
_Rewritten = tuple[str, set[str], bool]


class ExchangeError(CustosError):
    """A message out of order or of an unknown kind: the stream is broken off."""

    code = "exchange_invalid"


@dataclass
class Exchange:
    masker: Masker
    tools: ToolFilter | None = None
    metrics: MaskingMetrics | None = None
    report: MaskReport = field(default_factory=MaskReport)
    # What this exchange has learnt so far, message by message.
    _sse: SseRewriter | None = None
    _gzip: bool = False
    _methods: frozenset[str] = frozenset()
    _calls: tuple[McpCall, ...] = ()  # with the tool or prompt each names, for exceptions
    _identity: Identity | None = None
    _text_ok: bool = False
    # The answer's masking and what its JSON goes through, both set by its headers.
    _answer: AnswerMasking | None = None
    _json_rewrite: Callable[[str], _Rewritten] | None = None
    # A stream's status and headers went to the client: a refusal can only end it.
    _released: bool = False
    _dropping: bool = False  # refused in the stream: the rest of the server's is dropped
    # The ids of the request's calls whose responses the stream has not carried yet; None
    # when no response is awaited (a GET stream, notifications only, no record kept).
    _awaiting: set[str] | None = None
    # Once a response has gone by with others still awaited (a batch, or an error with a
    # null id), what follows is held until all are answered or the stream ends: no
    # response reaches the client before the exchange's record is on disk.
    _responded: bool = False
    _held: bytearray = field(default_factory=bytearray)
    # What the audit record needs; None when this ext_proc writes no records.
    recording: ExchangeRecording | None = None
    # The ids in flight in each session, shared by this ext_proc's exchanges; None: not kept.
    in_flight: InFlight | None = None
    _session: str = ""  # the request's Mcp-Session-Id
    # Its requests by id as the SDK compares them (7 and "7" alike): the id as sent, and
    # the method.
    _asked: dict[str, tuple[_Id, str]] = field(default_factory=dict)
    _claim: Claim = frozenset()
    # Claims and their release race when a body is masked in a worker thread that outlives
    # its exchange (refused at the time limit): once ended, an exchange claims nothing.
    _claiming: threading.Lock = field(default_factory=threading.Lock)
    _ended: bool = False
    _body_seen: bool = False  # the request's body came here: what it asked is known
    _produced: set[str] = field(default_factory=set)  # ids answered in the output so far
    _delivered: set[str] = field(default_factory=set)  # of those, the ones gone to the client
    # Set when the exchange is over for the client: "complete", "refused" (it got a 502 or
    # 503, or an error event once a stream's 200 was out), or "reset" (Envoy breaks it off).
    finished: str = ""

    def handle(self, request: ext_proc.ProcessingRequest) -> ext_proc.ProcessingResponse:
        if request.HasField("metadata_context"):
            self._remember_decision(request.metadata_context)
        if self.recording is not None and request.attributes:
            self.recording.attributes(request.attributes)
        kind = request.WhichOneof("request")
        try:
            if kind == "request_headers":
                values = dict(_header_pairs(request.request_headers))
                self._session = values.get("mcp-session-id", "")
                if self.recording is not None:
                    self.recording.request_headers(values)
                see_body = self.recording is not None or self.in_flight is not None
                return _request_headers(self.masker.config.mask_requests, see_body=see_body)
            if kind == "request_body":
                return self._request_body(request.request_body)
            if kind == "response_headers":
                response = self._response_headers(request.response_headers)
                if request.response_headers.end_of_stream:  # no body follows
                    self._finish()
                return response
            if kind == "response_body":
                response = self._response_body(request.response_body)
                if request.response_body.end_of_stream:
                    self._finish()
                return response
        except CustosError as exc:
            return self.refuse(exc)
        raise ExchangeError(f"unexpected ext_proc message {kind!r}")

    def work_bytes(self, request: ext_proc.ProcessingRequest) -> int:
        """About how many bytes handling this message masks: the servicer sends heavy ones
        to a worker thread with a time limit. A gzip body may inflate to the bound, and an
        SSE chunk completes an event that may have grown chunk by chunk."""
        if request.HasField("request_body"):
            return len(request.request_body.body)
        if not request.HasField("response_body"):
            return 0
        if self._gzip:
            return self.masker.config.max_body_bytes
        pending = self._sse.pending_bytes if self._sse is not None else 0
        return pending + len(request.response_body.body)

    def refuse(self, exc: CustosError) -> ext_proc.ProcessingResponse:
        """The exchange ends with a 502 that carries nothing of the MCP server's (a 503
        when it could not be recorded), whose JSON-RPC error names the limit if one was
        exceeded. Once a stream's 200 is out, the error goes to the client as an event
        answering the requests still awaited, and the rest of the stream is dropped."""
        if self.metrics is not None:
            self.metrics.record_refusal(exc.code)
        if self._released and self._sse is not None and not self.finished:
            self.finished = "refused"
            self._dropping = True
            # Each request the client has no response to yet: those of what is dropped now
            # (held back, or the chunk in hand) included.
            unanswered = [
                sent for key, (sent, _) in self._asked.items() if key not in self._delivered
            ]
            event = _error_event(exc, unanswered)
            if self.recording is not None:
                self.recording.delivered(event)
            return _body_response(event, self.report)
        response = _refusal(exc)
        if self._released:
            # Too late even for an event (the stream was already broken off): Envoy can
            # only reset it; the record keeps the status and the body the client did get.
            self.finished = "reset"
            return response
        self.finished = "refused"
        if self.recording is not None:
            refusal = response.immediate_response
            self.recording.status = refusal.status.code
            self.recording.delivered(refusal.body)
        return response

    @property
    def outcome(self) -> str:
        """The outcome to record now; "" while the client's answer is not complete. A
        stream is "complete" as soon as it has carried the response to each call of the
        request, before the last of them goes out: what follows (usually nothing, the
        server closes the stream) is not in the record."""
        if self.finished:
            return self.finished
        return "complete" if self._awaiting is not None and not self._awaiting else ""

    def audit_record(self, outcome: str) -> audit_pb2.Exchange | None:
        """The record of this exchange; None when it is not this service's to write (no
        recording, or ext_authz recorded its refusal)."""
        recording = self.recording
        if recording is None or recording.audited_elsewhere:
            return None
        return recording.record(outcome, self._identity, self._calls, self.report.as_dict())

    def release(self) -> None:
        """The exchange is over: its requests' ids are free again in their session, and
        none is held for it after this."""
        with self._claiming:
            self._ended = True
            claim, self._claim = self._claim, frozenset()
        if self.in_flight is not None and claim:
            self.in_flight.release(claim)

    def _claim_ids(self, ids: set[str]) -> None:
        """Holds the request's ids in its session, before anything else is done with it."""
        if self.in_flight is None or not self._session or not ids:
            return
        with self._claiming:
            if self._ended:
                raise ExchangeError("the exchange ended before its request was read")
            self._claim = self.in_flight.claim(self._session, ids)

    def _finish(self) -> None:
        self.finished = self.finished or "complete"
        if self._answer is not None:
            self._answer.finish()
        if self.metrics is not None:
            self.metrics.record(self.report)

    def _remember_decision(self, metadata: base_pb2.Metadata) -> None:
        decision = metadata.filter_metadata.get(AUTHZ_NAMESPACE)
        if decision is not None and self.recording is not None:
            self.recording.decided(decision)
        if decision is not None and "mcp_methods" in decision.fields:
            # Not a list (another version's metadata): no methods known, so all is masked.
            methods = decision.fields["mcp_methods"].list_value.values
            self._methods = frozenset(m.string_value for m in methods if m.string_value)
            self._calls = _calls_from(decision)
            self._identity = identity_from(decision)

    def _rewrite(self, answer: AnswerMasking) -> Callable[[str], _Rewritten]:
        """What the answer's JSON goes through: the tools filter, then the masking of a
        listing, for a listing of tools; the answer's masking for everything else. Then
        its responses are checked, and said."""
        tools = self.tools if self._methods == {"tools/list"} else None

        def rewrite(text: str) -> _Rewritten:
            if tools is not None and (listing := tools.filter(text, self._identity)):
                masked = answer.listing(listing)
            else:
                masked = answer.document(text)
            answered, any_response = self._check_responses(masked)
            self._produced |= answered
            return masked, answered, any_response

        return rewrite

    def _check_responses(self, text: str) -> tuple[set[str], bool]:
        """An answer carries one response to each of this stream's own requests, no other:
        the MCP SDK routes a response by its id, and one that took the wrong stream (a
        ping's carrying a patient's record) must not reach this client. A POST of
        notifications alone is answered by nothing, and a ping by an empty result. Known
        once the request's body was seen; a GET stream's is the server's. Returns the ids
        answered, and whether there is any response (an error's id may be null)."""
        if not self._body_seen:
            return set(), False
        answered: set[str] = set()
        any_response = False
        for message in _messages(text):
            if "method" in message or not ("result" in message or "error" in message):
                continue
            any_response = True
            asked = message.get("id")
            if asked is None and "result" not in message:  # an error about a bad request
                continue
            key = str(asked)
            request = self._asked.get(key) if _id_of(message) is not None else None
            if request is None:
                raise MaskingError("a response to a request this stream did not carry")
            if key in answered or key in self._produced:
                raise MaskingError("a second response to one request")
            if request[1] == "ping" and not _bare(message):
                raise MaskingError("a ping answered with more than an empty result")
            answered.add(key)
        return answered, any_response

    def _policy_input(self) -> PolicyInput | None:
        """The caller and what it asked, as masking exceptions see them."""
        if self._identity is None:
            return None
        calls = self._calls or tuple(McpCall(method=method) for method in sorted(self._methods))
        return PolicyInput(self._identity, HttpRequest("POST", "/mcp"), calls, len(calls) > 1)

    def _protocol_only(self) -> bool:
        """Answers to handshakes and listings carry no patient data, and masking their
        schemas and versions would break the protocol. Anything else, and anything
        unknown (no decision seen, a GET stream, a client's reply), is masked."""
        return bool(self._methods) and self._methods <= PROTOCOL_METHODS

    def _response_headers(self, headers: ext_proc.HttpHeaders) -> ext_proc.ProcessingResponse:
        pairs = _header_pairs(headers)
        values = dict(pairs)
        if self.recording is not None:
            self.recording.response_headers(values)
        encoding = values.get("content-encoding", "identity").strip().lower()
        if encoding == "gzip":
            self._gzip = True
        elif encoding != "identity":
            raise MaskingError(f"cannot mask a body with content-encoding {encoding!r}")
        types = [value for name, value in pairs if name == "content-type"]
        raw_type = types[0] if types else ""
        if len(types) > 1 or "," in raw_type:  # several types: a client might read either
            raise MaskingError("a response with more than one content-type")
        content_type = raw_type.split(";")[0].strip().lower()
        streamed = content_type == "text/event-stream"
        if not streamed and "event-stream" in raw_type.lower():
            # MCP clients test for the substring: "application/json-event-stream", or a
            # parameter naming it, would be read as the stream that is not masked as one.
            raise MaskingError("a content-type that names an event stream but is not one")
        if streamed and self._gzip:
            raise MaskingError("cannot stream-mask a compressed event stream")
        charset = _CHARSET.search(raw_type)
        if charset and charset.group(1).strip("\"'").lower() not in ("utf-8", "utf8"):
            # The masker reads UTF-8; a client decoding another charset would read text
            # the masker never saw (UTF-16 is ASCII and NUL bytes to a UTF-8 reader).
            raise MaskingError("a body in a charset other than UTF-8")
        # Whatever the type, a body that parses as JSON is masked as JSON (a client may
        # read it as JSON); only text/plain that is not JSON (Envoy's own local replies)
        # is scanned as text; anything else is refused.
        self._text_ok = content_type == "text/plain"
        # Only now, when the answer is known to be maskable: a body after a refusal finds
        # no way to be masked, and is refused in turn.
        answer = self._answer = AnswerMasking(
            self.masker,
            self.report,
            keep=self.masker.unmasked_for(self._policy_input()),
            handshake=self._protocol_only(),
            streamed=streamed,
        )
        rewrite = self._json_rewrite = self._rewrite(answer)
        if streamed:
            self._sse = SseRewriter(
                self._answering(rewrite),
                max_event_bytes=self.masker.config.max_event_bytes,
                rewrite_other=answer.line,
            )
        removed = ["content-length", "content-encoding", *self._headers_with_phi(pairs, answer)]
        mutation = ext_proc.HeaderMutation(remove_headers=removed)
        body_mode = Mode.STREAMED if streamed else Mode.BUFFERED
        # Envoy sends a streamed answer's headers on as soon as it has this; a buffered
        # answer's wait for its body, so a refusal can still replace them.
        self._released = streamed
        return ext_proc.ProcessingResponse(
            response_headers=ext_proc.HeadersResponse(
                response=ext_proc.CommonResponse(header_mutation=mutation)
            ),
            mode_override=Mode(response_body_mode=body_mode),
        )

    def _answering(self, rewrite: Callable[[str], _Rewritten]) -> Callable[[str], str]:
        """`rewrite` for an event's data, noting the responses to the request's calls in
        what the client will read."""

        def rewrite_event(text: str) -> str:
            masked, answered, any_response = rewrite(text)
            if self._awaiting:
                self._awaiting -= answered
                self._responded = self._responded or (any_response and bool(self._awaiting))
            return masked

        return rewrite_event

    @staticmethod
    def _headers_with_phi(pairs: list[tuple[str, str]], answer: AnswerMasking) -> list[str]:
        """Names of the answer's headers in which a detector finds PHI: removed whole (a
        header is not a document to rewrite), every value of that name."""
        found: set[str] = set()
        for name, value in pairs:
            if name in _PROTOCOL_HEADERS or name.startswith(":") or name in found:
                continue
            if answer.text(value, carrying=False) != value:
                found.add(name)
        return sorted(found)

    def _request_body(self, body: ext_proc.HttpBody) -> ext_proc.ProcessingResponse:
        """Masked when the rules say so; else only seen, for the audit record and for the
        ids it puts in flight in its session."""
        if not body.end_of_stream:
            raise MaskingError("a buffered request body that does not end")
        self._asked = _requests(body.body)
        self._body_seen = True
        ids = set(self._asked)  # as compared
        if self.recording is not None:
            # A GET has no body: its stream is the server's, and is recorded when it ends.
            self._awaiting = ids or None
            if not self.masker.config.mask_requests:  # kept as it came, whatever follows
                self.recording.request_body = body.body
        self._claim_ids(ids)
        if self.masker.config.mask_requests:
            deadline = time.monotonic() + self.masker.config.mask_timeout_ms / 1000
            sent = (
                self.masker.mask_request_body(body.body, self.report, deadline)
                if body.body
                else b""
            )
            mutation = ext_proc.CommonResponse(body_mutation=ext_proc.BodyMutation(body=sent))
            response = ext_proc.ProcessingResponse(
                request_body=ext_proc.BodyResponse(response=mutation)
            )
        elif self.recording is None and self.in_flight is None:
            raise ExchangeError("a request body that was not asked for")
        else:
            sent = body.body
            response = ext_proc.ProcessingResponse(request_body=ext_proc.BodyResponse())
        if self.recording is not None:
            self.recording.request_body = sent
        return response

    def _response_body(self, body: ext_proc.HttpBody) -> ext_proc.ProcessingResponse:
        if self.recording is not None:
            self.recording.upstream_chunk(body.body)
        if self._dropping:
            # Refused in the stream, the client told so: what the server sends after goes
            # nowhere, and a stream that goes on is ended (Envoy resets it), not left open.
            if body.end_of_stream:
                return _body_response(b"", None)
            return _refusal(MaskingError("the stream was refused"))
        if self._answer is None or self._json_rewrite is None:
            raise ExchangeError("a response body before its headers")
        self._answer.message()
        if self._sse is not None:
            if not self._held:  # what earlier messages produced went out to the client
                self._delivered = set(self._produced)
            out = self._sse.feed(body.body)
            if body.end_of_stream:
                out += self._sse.finish()
            out = self._hold(out, body.end_of_stream)
            self._seen(out)
            return _body_response(out, self.report if body.end_of_stream else None)
        if not body.end_of_stream:  # buffered mode sends the whole body, or trailers follow
            raise MaskingError("a buffered response body that does not end")
        raw = _gunzip(body.body, self.masker.config.max_body_bytes) if self._gzip else body.body
        text = self.masker.decoded(raw)
        if self._text_ok and not _is_json(text):
            masked = self._answer.text(text).encode()
        else:
            masked = self._json_rewrite(text)[0].encode()
        self._seen(masked)
        return _body_response(masked, self.report)

    def _hold(self, out: bytes, end: bool) -> bytes:
        """What of a stream's masked output goes to the client now (see `_responded`)."""
        if not self._responded:
            return out
        self._held += out
        if self._awaiting and not end:
            return b""
        released, self._held = bytes(self._held), bytearray()
        return released

    def _seen(self, masked: bytes) -> None:
        if self.recording is not None:
            self.recording.delivered(masked)


def _calls_from(decision: struct_pb2.Struct) -> tuple[McpCall, ...]:
    """The calls ext_authz judged, by method and tool or prompt name; () when absent or not
    of that shape (then exceptions see methods alone, and one naming a tool grants nothing)."""
    if "mcp_calls" not in decision.fields:
        return ()
    calls = []
    for item in decision.fields["mcp_calls"].list_value.values:
        fields = item.struct_value.fields
        method, tool, name = (fields[k].string_value if k in fields else "" for k in _CALL_KEYS)
        if not method:
            return ()
        calls.append(McpCall(method=method, tool=tool, name=name))
    return tuple(calls)


_CALL_KEYS = ("method", "tool", "name")


def _requests(body: bytes) -> dict[str, tuple[_Id, str]]:
    """The JSON-RPC requests (a message with an id and a method) in a request body, one
    message or a batch: id as text (the MCP SDK reads 7 and "7" alike) -> (the id as sent,
    the method); none for notifications, responses, or what is not JSON."""
    try:
        messages = _messages(body.decode())
    except UnicodeDecodeError:
        return {}
    return {
        str(i): (i, str(m["method"]))
        for m in messages
        if "method" in m and (i := _id_of(m)) is not None
    }


def _messages(text: str) -> list[dict[str, Any]]:
    try:
        document = json_codec.loads(text)
    except (ValueError, RecursionError):
        return []
    items = document if isinstance(document, list) else [document]
    return [item for item in items if isinstance(item, dict)]


def _bare(message: dict[str, Any]) -> bool:
    """A response that says nothing but that it is one: an empty result (or one with an
    empty `_meta`), or an error of a code and a message."""
    if "result" in message:
        return message["result"] in ({}, {"_meta": {}})
    error = message.get("error")
    return isinstance(error, dict) and set(error) <= {"code", "message"}


def _id_of(message: dict[str, Any]) -> _Id | None:
    value = message.get("id")
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    return value


def _header_pairs(headers: ext_proc.HttpHeaders) -> list[tuple[str, str]]:
    """(lower-case name, value) of each header, repeated ones included; read as UTF-8
    where it is (as clients read it, so no dash or space hides a number), else Latin-1."""
    return [(h.key.lower(), _header_text(h.raw_value) or h.value) for h in headers.headers.headers]


def _header_text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _is_json(text: str) -> bool:
    """Whether `text` must be masked as JSON: an object, an array or a string (whose
    escapes would hide from a scan as text), and JSON too deep or big to read, to be
    refused. A bare number is left to the scan, which reads any number in text."""
    try:
        value = json_codec.loads(text)
    except (json_codec.TooBigError, RecursionError):
        return True
    except ValueError:
        return False
    return isinstance(value, dict | list | str)


def _request_headers(mask_body: bool, see_body: bool) -> ext_proc.ProcessingResponse:
    removed = ["accept-encoding"]
    override = None
    if mask_body or see_body:
        # The masking rules and the audit configuration, not Envoy's, say whether the
        # request body comes here, so they cannot disagree. The override replaces the
        # whole mode: the response body must stay buffered, or the answer would pass unseen.
        override = Mode(request_body_mode=Mode.BUFFERED, response_body_mode=Mode.BUFFERED)
    if mask_body:
        removed.append("content-length")
    return ext_proc.ProcessingResponse(
        request_headers=ext_proc.HeadersResponse(
            response=ext_proc.CommonResponse(
                header_mutation=ext_proc.HeaderMutation(remove_headers=removed)
            )
        ),
        mode_override=override,
    )


def _body_response(body: bytes, report: MaskReport | None) -> ext_proc.ProcessingResponse:
    response = ext_proc.ProcessingResponse(
        response_body=ext_proc.BodyResponse(
            response=ext_proc.CommonResponse(body_mutation=ext_proc.BodyMutation(body=body))
        )
    )
    if report is not None:
        # For the access log and the audit record: what was masked, never the values.
        masked = {entity: float(count) for entity, count in report.counts.items()}
        metadata = struct_pb2.Struct()
        metadata.update({"masked": masked})
        response.dynamic_metadata.CopyFrom(metadata)
    return response


def _refusal(exc: CustosError) -> ext_proc.ProcessingResponse:
    unrecorded = isinstance(exc, SpoolError)  # no audit, no access
    status = http_status_pb2.ServiceUnavailable if unrecorded else http_status_pb2.BadGateway
    code = -32603
    if isinstance(exc, IdInFlight | InFlightFull):  # the request's own doing, or load
        status, code = exc.http_status, -32600
    body = {"jsonrpc": "2.0", "id": None, "error": _error(exc, code)}
    return ext_proc.ProcessingResponse(
        immediate_response=ext_proc.ImmediateResponse(
            status=http_status_pb2.HttpStatus(code=status),
            headers=ext_proc.HeaderMutation(
                set_headers=[
                    base_pb2.HeaderValueOption(
                        header=base_pb2.HeaderValue(
                            key="content-type", raw_value=b"application/json"
                        )
                    )
                ]
            ),
            body=orjson.dumps(body),
            details=exc.code,
        )
    )


def _error(exc: CustosError, code: int = -32603) -> dict[str, Any]:
    """The JSON-RPC error a refusal gives the client: what happened, in words that carry
    nothing of the server's answer; a limit by its name and value."""
    if isinstance(exc, SpoolError):
        message = "the exchange could not be recorded"
    elif isinstance(exc, IdInFlight | InFlightFull):
        message = exc.message
    elif isinstance(exc, LimitExceeded):
        message = str(exc)
    else:
        message = "the response could not be made safe to show"
    return {"code": code, "message": message, "data": {"reason": exc.code}}


def _error_event(exc: CustosError, awaited: list[_Id]) -> bytes:
    """A refusal as SSE events after the stream's 200: an error response for each request
    still awaited (clients wait on their ids), or one with a null id."""
    ids: list[_Id | None] = list(awaited) or [None]
    return b"".join(
        b"event: message\ndata: "
        + orjson.dumps({"jsonrpc": "2.0", "id": i, "error": _error(exc)})
        + b"\n\n"
        for i in ids
    )


def _gunzip(raw: bytes, limit: int) -> bytes:
    """Decompressed, with the size bound applied to the output (a small bomb of a body
    must not become gigabytes)."""
    if not raw:  # an empty answer (a HEAD, a 204) that still names its encoding
        return raw
    inflater = zlib.decompressobj(wbits=31)
    try:
        out = inflater.decompress(raw, limit + 1)
    except zlib.error as exc:
        raise MaskingError("gzip body does not decompress") from exc
    if len(out) > limit or inflater.unconsumed_tail:
        raise BodyTooLarge(f"the answer exceeds max_body_bytes ({limit}) decompressed")
    if not inflater.eof or inflater.unused_data:
        # A truncated stream, or a second member or bytes after the first: a client might
        # read what this would drop, so nothing of it goes out.
        raise MaskingError("gzip body is not exactly one complete member")
    return out
