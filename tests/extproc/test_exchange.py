"""The ext_proc state machine on Envoy's real protobuf messages, without a server."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from envoy.config.core.v3 import base_pb2
from envoy.extensions.filters.http.ext_proc.v3 import processing_mode_pb2 as modes
from envoy.service.ext_proc.v3 import external_processor_pb2 as ext_proc

from custos.policy.reloader import PolicyReloader
from custos.stack import EXAMPLE_POLICY, PROJECT_ROOT
from extproc.exchange import Exchange, ExchangeError
from extproc.masking.config import load_masking_config
from extproc.masking.engine import Masker
from extproc.tool_filter import ToolFilter
from tests.extproc.configs import masker_with_exception
from tests.extproc.demo_data import PATIENTS, record_response

Mode = modes.ProcessingMode


@pytest.fixture
def exchange(monkeypatch: pytest.MonkeyPatch) -> Exchange:
    monkeypatch.setenv("CUSTOS_PSEUDONYM_KEY", "exchange-test-key-0123456789")
    return Exchange(Masker(load_masking_config(PROJECT_ROOT / "examples" / "masking.yaml")))


def headers(kind: str, **values: str) -> ext_proc.ProcessingRequest:
    header_map = base_pb2.HeaderMap(
        headers=[
            base_pb2.HeaderValue(key=k.replace("_", "-"), raw_value=v.encode())
            for k, v in values.items()
        ]
    )
    return ext_proc.ProcessingRequest(**{kind: ext_proc.HttpHeaders(headers=header_map)})


def body(data: bytes, end: bool) -> ext_proc.ProcessingRequest:
    return ext_proc.ProcessingRequest(response_body=ext_proc.HttpBody(body=data, end_of_stream=end))


def test_the_upstream_is_asked_not_to_compress(exchange: Exchange) -> None:
    response = exchange.handle(headers("request_headers", accept_encoding="gzip, br"))
    mutation = response.request_headers.response.header_mutation
    assert list(mutation.remove_headers) == ["accept-encoding"]


def test_a_json_response_is_buffered_and_masked_whole(exchange: Exchange) -> None:
    started = exchange.handle(
        headers("response_headers", content_type="application/json", content_length="999")
    )
    assert started.mode_override.response_body_mode == Mode.BUFFERED
    removed = started.response_headers.response.header_mutation.remove_headers
    assert "content-length" in removed
    done = exchange.handle(body(record_response("pt-0001"), end=True))
    masked = done.response_body.response.body_mutation.body
    assert PATIENTS["pt-0001"].ssn not in masked.decode()
    assert json.loads(masked)["result"]["structuredContent"]["ssn"] == "[SSN]"
    counts = done.dynamic_metadata.fields["masked"].struct_value.fields
    assert counts["ssn"].number_value == 2


def test_sse_is_streamed_event_by_event_across_chunk_boundaries(exchange: Exchange) -> None:
    started = exchange.handle(headers("response_headers", content_type="text/event-stream"))
    assert started.mode_override.response_body_mode == Mode.STREAMED
    event = b"event: message\ndata: " + record_response("pt-0002") + b"\n\n"
    stream = event + event
    cut = len(event) + 40  # the second event arrives in two pieces
    first = exchange.handle(body(stream[:cut], end=False)).response_body
    second = exchange.handle(body(stream[cut:], end=True)).response_body
    out_first = first.response.body_mutation.body
    out_second = second.response.body_mutation.body
    assert out_first.count(b"\n\n") == 1  # the first event went out at once
    whole = (out_first + out_second).decode()
    assert PATIENTS["pt-0002"].ssn not in whole and PATIENTS["pt-0002"].name not in whole
    assert whole.count("event: message\n") == 2


def test_sse_ids_event_names_and_comments_are_masked_too(exchange: Exchange) -> None:
    # A client may show or log any line; only the data is JSON, the rest is scanned as text.
    exchange.handle(headers("response_headers", content_type="text/event-stream"))
    stream = (
        b": patient 123-45-6789 follows\n"
        b"id: ada@example.org\n"
        b"event: message\n"
        b'data: {"jsonrpc":"2.0","id":1,"result":{"note":"call (555) 010-0101"}}\n\n'
    )
    out = exchange.handle(body(stream, end=True)).response_body.response.body_mutation.body
    text = out.decode()
    assert "123-45-6789" not in text and "ada@example.org" not in text
    assert "010-0101" not in text
    assert text.startswith(": patient [SSN] follows\nid: [EMAIL]\nevent: message\n")
    assert exchange.report.counts == {"ssn": 1, "email": 1, "phone": 1}


def test_a_gzip_response_is_decompressed_and_masked(exchange: Exchange) -> None:
    started = exchange.handle(
        headers("response_headers", content_type="application/json", content_encoding="gzip")
    )
    assert "content-encoding" in started.response_headers.response.header_mutation.remove_headers
    done = exchange.handle(body(gzip.compress(record_response("pt-0003")), end=True))
    masked = done.response_body.response.body_mutation.body
    assert PATIENTS["pt-0003"].ssn not in masked.decode()
    assert json.loads(masked)["id"] == 2


@pytest.mark.parametrize("payload", [b"{not json", gzip.compress(b"x" * 10_000_000)])
def test_what_cannot_be_masked_becomes_a_502_without_upstream_bytes(
    exchange: Exchange, payload: bytes
) -> None:
    exchange.handle(
        headers("response_headers", content_type="application/json", content_encoding="gzip")
        if payload[:2] == b"\x1f\x8b"
        else headers("response_headers", content_type="application/json")
    )
    refused = exchange.handle(body(payload, end=True)).immediate_response
    assert refused.status.code == 502
    assert b"not json" not in refused.body and b"xxxx" not in refused.body
    assert json.loads(refused.body)["error"]["code"] == -32603


def test_an_unknown_encoding_is_refused(exchange: Exchange) -> None:
    refused = exchange.handle(
        headers("response_headers", content_type="application/json", content_encoding="br")
    )
    assert refused.immediate_response.status.code == 502


def test_an_unexpected_message_is_an_error_not_a_pass_through(exchange: Exchange) -> None:
    with pytest.raises(ExchangeError):
        exchange.handle(ext_proc.ProcessingRequest())


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-ndjson"])
def test_a_json_body_is_masked_as_json_whatever_its_type_says(
    exchange: Exchange, content_type: str | None
) -> None:
    # A client may parse it as JSON anyway: field rules must apply, not a text scan.
    values = {"content_type": content_type} if content_type else {}
    exchange.handle(headers("response_headers", **values))
    done = exchange.handle(body(record_response("pt-0001"), end=True))
    masked = done.response_body.response.body_mutation.body.decode()
    assert PATIENTS["pt-0001"].name not in masked
    assert PATIENTS["pt-0001"].ssn not in masked


def test_a_non_json_body_of_an_unknown_type_is_refused(exchange: Exchange) -> None:
    exchange.handle(headers("response_headers", content_type="application/octet-stream"))
    refused = exchange.handle(body(b"Alice Fakenham 900-12-3456", end=True))
    assert refused.immediate_response.status.code == 502


@pytest.mark.parametrize(
    "values",
    [
        {"content_type": "application/json, text/plain"},
        {"content_type": "text/event-stream", "content_encoding": "gzip"},
        # MCP clients look for the substring "text/event-stream" (or "event-stream"):
        # they would read these as the stream that is not masked as one.
        {"content_type": "application/json-event-stream"},
        {"content_type": "text/plain; x=text/event-stream"},
    ],
)
def test_ambiguous_or_unstreamable_answers_are_refused(
    exchange: Exchange, values: dict[str, str]
) -> None:
    refused = exchange.handle(headers("response_headers", **values))
    assert refused.immediate_response.status.code == 502
    # Were Envoy to send the body all the same, it would be refused too, not passed.
    after = exchange.handle(body(record_response("pt-0001"), end=True))
    assert after.immediate_response.status.code == 502


def test_an_empty_answer_that_names_gzip_passes_empty(exchange: Exchange) -> None:
    exchange.handle(
        headers("response_headers", content_type="application/json", content_encoding="gzip")
    )
    done = exchange.handle(body(b"", end=True))
    assert not done.HasField("immediate_response")
    assert done.response_body.response.body_mutation.body == b""


def test_two_content_type_headers_are_refused(exchange: Exchange) -> None:
    header_map = base_pb2.HeaderMap(
        headers=[
            base_pb2.HeaderValue(key="content-type", raw_value=b"application/json"),
            base_pb2.HeaderValue(key="Content-Type", raw_value=b"text/event-stream"),
        ]
    )
    request = ext_proc.ProcessingRequest(response_headers=ext_proc.HttpHeaders(headers=header_map))
    assert exchange.handle(request).immediate_response.status.code == 502


@pytest.mark.parametrize(
    "payload",
    [
        gzip.compress(record_response("pt-0001")) + gzip.compress(b'{"more": 1}'),
        gzip.compress(record_response("pt-0001")) + b"trailing bytes",
        gzip.compress(record_response("pt-0001"))[:-12],  # cut short
    ],
    ids=["second member", "trailing bytes", "truncated"],
)
def test_a_gzip_body_that_is_not_one_whole_member_is_refused(
    exchange: Exchange, payload: bytes
) -> None:
    exchange.handle(
        headers("response_headers", content_type="application/json", content_encoding="gzip")
    )
    refused = exchange.handle(body(payload, end=True)).immediate_response
    assert refused.status.code == 502
    assert PATIENTS["pt-0001"].ssn.encode() not in refused.body


def test_a_body_before_its_headers_is_refused_not_passed(exchange: Exchange) -> None:
    refused = exchange.handle(body(record_response("pt-0001"), end=True))
    assert refused.immediate_response.status.code == 502
    assert not refused.HasField("response_body")


def test_a_buffered_body_that_does_not_end_is_refused(exchange: Exchange) -> None:
    exchange.handle(headers("response_headers", content_type="application/json"))
    refused = exchange.handle(body(record_response("pt-0001"), end=False))
    assert refused.immediate_response.status.code == 502


def test_an_sse_priming_event_with_empty_data_passes(exchange: Exchange) -> None:
    exchange.handle(headers("response_headers", content_type="text/event-stream"))
    out = exchange.handle(body(b"id: 1\ndata:\n\n", end=False))
    assert out.response_body.response.body_mutation.body == b"id: 1\ndata:\n\n"


def test_request_bodies_are_asked_for_and_masked_only_when_configured(
    exchange: Exchange, monkeypatch: pytest.MonkeyPatch
) -> None:
    call = {
        "jsonrpc": "2.0",
        "id": 3,
        "method": "tools/call",
        "params": {"name": "lookup", "arguments": {"ssn": "123-45-6789", "note": "SSN 123456789"}},
    }
    request_body = ext_proc.ProcessingRequest(
        request_body=ext_proc.HttpBody(body=json.dumps(call).encode(), end_of_stream=True)
    )
    plain = exchange.handle(headers("request_headers"))
    assert not plain.HasField("mode_override")  # requests stay unread by default
    assert exchange.handle(request_body).HasField("immediate_response")  # not asked for

    config = exchange.masker.config.model_copy(update={"mask_requests": True})
    masking = Exchange(Masker(config))
    asked = masking.handle(headers("request_headers"))
    assert asked.mode_override.request_body_mode == Mode.BUFFERED
    # the override replaces the whole mode: the answer must still come to be masked
    assert asked.mode_override.response_body_mode == Mode.BUFFERED
    assert "content-length" in asked.request_headers.response.header_mutation.remove_headers
    done = masking.handle(request_body)
    sent = json.loads(done.request_body.response.body_mutation.body)
    assert sent["params"]["name"] == "lookup" and sent["method"] == "tools/call"
    assert sent["params"]["arguments"] == {"ssn": "[SSN]", "note": "SSN [SSN]"}
    assert masking.report.as_dict()["ssn"]["paths"] == [
        "$.params.arguments.note",
        "$.params.arguments.ssn",
    ]


def decided(methods: list[str], *groups: str) -> ext_proc.ProcessingRequest:
    """Response headers of an SSE answer, with the decision ext_authz left for ext_proc:
    the methods called and, given `groups`, the verified caller."""
    request = headers("response_headers", content_type="text/event-stream")
    decision = request.metadata_context.filter_metadata["envoy.filters.http.ext_authz"]
    decision.update({"mcp_methods": methods})
    if groups:
        identity = {"issuer": "https://idp", "subject": "someone", "groups": list(groups)}
        decision.update({"identity": identity})
    return request


def listing_exchange(masker: Masker, *groups: str) -> Exchange:
    """An exchange answering tools/list to a caller in `groups`, its tool filter on."""
    exchange = Exchange(masker, tools=ToolFilter(PolicyReloader(EXAMPLE_POLICY)))
    exchange.handle(decided(["tools/list"], *groups))
    return exchange


def test_a_handshake_result_passes_but_notifications_on_its_stream_are_masked(
    exchange: Exchange,
) -> None:
    exchange.handle(decided(["initialize"]))
    result = {"protocolVersion": "2025-06-18", "capabilities": {}, "instructions": "x"}
    handshake = json.dumps({"jsonrpc": "2.0", "id": 0, "result": result})
    notice = json.dumps(
        {
            "jsonrpc": "2.0",
            "method": "notifications/message",
            "params": {"level": "info", "data": "loaded 123-45-6789"},
        }
    )
    stream = f"data: {notice}\n\ndata: {handshake}\n\n".encode()
    out = exchange.handle(body(stream, end=True)).response_body.response.body_mutation.body
    first, second = out.decode().split("\n\n")[:2]
    assert "123-45-6789" not in first and "[SSN]" in first
    # Versions look like dates: the handshake's protocol members pass as they are.
    assert json.loads(second.removeprefix("data: ")) == json.loads(handshake)


def test_only_the_protocol_members_of_a_handshake_answer_pass(exchange: Exchange) -> None:
    # A server slipping another result into the answer to initialize gets it masked.
    exchange.handle(decided(["initialize"]))
    batch = [
        {"jsonrpc": "2.0", "id": 0, "result": {"protocolVersion": "2025-06-18"}},
        {"jsonrpc": "2.0", "id": 7, "result": {"content": [{"text": "SSN 123-45-6789"}]}},
    ]
    out = exchange.handle(body(f"data: {json.dumps(batch)}\n\n".encode(), end=True))
    text = out.response_body.response.body_mutation.body.decode()
    assert "123-45-6789" not in text and "2025-06-18" in text


def test_a_listing_of_tools_that_is_not_a_listing_is_masked(exchange: Exchange) -> None:
    # A server answering tools/list with something else must not get it past unmasked.
    exchange = listing_exchange(exchange.masker)
    error = {"jsonrpc": "2.0", "id": 1, "error": {"code": 1, "message": "SSN 123-45-6789"}}
    out = exchange.handle(body(f"data: {json.dumps(error)}\n\n".encode(), end=True))
    assert b"123-45-6789" not in out.response_body.response.body_mutation.body
    # A listing with anything beside its tools is masked whole, not filtered and passed.
    exchange = Exchange(exchange.masker, tools=exchange.tools)
    exchange.handle(decided(["tools/list"]))
    padded = {"jsonrpc": "2.0", "id": 1, "result": {"tools": [], "_meta": {"n": "123-45-6789"}}}
    out = exchange.handle(body(f"data: {json.dumps(padded)}\n\n".encode(), end=True))
    assert b"123-45-6789" not in out.response_body.response.body_mutation.body


def test_what_a_server_writes_about_its_tools_is_masked_but_what_clients_use_passes(
    exchange: Exchange,
) -> None:
    exchange = listing_exchange(exchange.masker, "phi-readers")
    schema = {"type": "object", "properties": {"name": {"type": "string"}}}
    tool = {
        "name": "search_patients",
        "title": "Patient Lookup",  # "Patient X" would read as a name in free text
        "description": "Finds patients, e.g. SSN 123-45-6789",
        "inputSchema": schema,
        "_meta": {"owner": "zed.qux@example.com"},
    }
    listing = {
        "jsonrpc": "2.0",
        "id": 1,
        "result": {
            "tools": [tool, {"name": "delete_patient", "inputSchema": schema}],
            "nextCursor": "2024-05-01T12:00:00Z",  # the client sends it back as it came
            "_meta": {"contact": "zed.qux@example.com", "name": "Zed Qux", "note": "ask Zed"},
        },
    }
    out = exchange.handle(body(f"data: {json.dumps(listing)}\n\n".encode(), end=True))
    text = out.response_body.response.body_mutation.body.decode()
    assert "123-45-6789" not in text and "zed.qux@example.com" not in text
    assert "Zed" not in text  # the listing's marked values are looked for in it too
    result = json.loads(text.removeprefix("data: "))["result"]
    assert [t["name"] for t in result["tools"]] == ["search_patients"]  # filtered, then masked
    kept = result["tools"][0]
    assert (kept["title"], kept["inputSchema"]) == ("Patient Lookup", schema)
    assert result["nextCursor"] == "2024-05-01T12:00:00Z"


def test_a_response_header_holding_phi_is_removed_and_protocol_headers_kept(
    exchange: Exchange,
) -> None:
    started = exchange.handle(
        headers(
            "response_headers",
            content_type="application/json",
            mcp_session_id="5550100101",  # digits, but the protocol's: kept as it is
            x_patient_contact="ada@example.org",
            x_trace="abc",
        )
    )
    removed = started.response_headers.response.header_mutation.remove_headers
    assert "x-patient-contact" in removed
    assert "mcp-session-id" not in removed and "x-trace" not in removed
    assert exchange.report.counts == {"email": 1}


def test_masking_gives_up_at_its_time_limit_by_itself(exchange: Exchange) -> None:
    # No thread or timer around it: the masker checks the deadline as it goes, so a body
    # masked past its limit stops, rather than burning on after its answer was refused.
    config = exchange.masker.config.model_copy(update={"mask_timeout_ms": 10})
    slow = Exchange(Masker(config))
    slow.handle(headers("response_headers", content_type="application/json"))
    notes = [
        {"type": "text", "text": f"Patient Ada Okafor, SSN 123-45-{i:04d}"} for i in range(40_000)
    ]
    answer = json.dumps({"jsonrpc": "2.0", "id": 1, "result": {"content": notes}})
    refused = slow.handle(body(answer.encode(), end=True))
    assert refused.immediate_response.details == "masking_failed"
    assert b"123-45-" not in refused.immediate_response.body


def test_an_exception_may_name_the_tool_whose_answer_it_unmasks(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    when = "mcp.tool == 'get_patient_record' && 'phi-unmasked' in identity.groups"
    masker = masker_with_exception(monkeypatch, tmp_path, when, "[ssn]")

    def answer_to(tool: str) -> str:
        exchange = Exchange(masker)
        started = headers("response_headers", content_type="application/json")
        decision = started.metadata_context.filter_metadata["envoy.filters.http.ext_authz"]
        decision.update(
            {
                "mcp_methods": ["tools/call"],
                "mcp_calls": [{"method": "tools/call", "tool": tool, "name": tool}],
                "identity": {"issuer": "https://idp", "subject": "carol", "groups": []},
            }
        )
        decision["identity"]["groups"].append("phi-unmasked")
        exchange.handle(started)
        done = exchange.handle(body(record_response("pt-0001"), end=True))
        return done.response_body.response.body_mutation.body.decode()

    ssn = PATIENTS["pt-0001"].ssn
    assert ssn in answer_to("get_patient_record")
    assert ssn not in answer_to("search_patients")


# --- what an MCP server controls: charsets, envelopes, streams, headers -----------------


def sse_out(exchange: Exchange, stream: str) -> str:
    out = exchange.handle(body(stream.encode(), end=True))
    assert not out.HasField("immediate_response"), out.immediate_response.details
    return out.response_body.response.body_mutation.body.decode()


@pytest.mark.parametrize(
    "content_type", ["text/event-stream; charset=utf-16-le", "application/json; charset=latin1"]
)
def test_a_charset_other_than_utf8_is_refused(exchange: Exchange, content_type: str) -> None:
    # UTF-16 is ASCII and NUL bytes to a UTF-8 reader: no "data:" line, no SSN in sight.
    refused = exchange.handle(headers("response_headers", content_type=content_type))
    assert refused.immediate_response.status.code == 502


def test_a_utf8_charset_is_fine(exchange: Exchange) -> None:
    started = exchange.handle(
        headers("response_headers", content_type='application/json; charset="UTF-8"')
    )
    assert not started.HasField("immediate_response")


def test_a_value_marked_in_one_event_is_masked_in_the_events_and_lines_after_it(
    exchange: Exchange,
) -> None:
    exchange.handle(decided(["tools/call"]))
    first = {"jsonrpc": "2.0", "method": "notify", "params": {"name": "Zed Quux"}}
    second = {"jsonrpc": "2.0", "id": 1, "result": {"note": "Zed Quux called back"}}
    stream = (
        f"data: {json.dumps(first)}\n\n: about Zed Quux\ndata: {json.dumps(second)}\n\n"
        "id: Zed Quux\ndata: {}\n\n"
    )
    assert "Zed" not in sse_out(exchange, stream)


def test_a_listing_with_an_envelope_or_cursor_that_is_an_object_is_masked_whole(
    exchange: Exchange,
) -> None:
    exchange = listing_exchange(exchange.masker)
    listing = {
        "jsonrpc": {"note": "SSN 123-45-6789"},
        "id": 3,
        "result": {"tools": [], "nextCursor": {"note": "SSN 123-45-6789"}},
    }
    assert "123-45-6789" not in sse_out(exchange, f"data: {json.dumps(listing)}\n\n")


def test_a_tool_name_no_policy_can_read_is_not_offered(exchange: Exchange) -> None:
    exchange = listing_exchange(exchange.masker, "phi-admins")
    listing = '{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"\\udfff"}]}}'
    assert json.loads(sse_out(exchange, f"data: {listing}\n\n")[6:])["result"]["tools"] == []


def test_a_plain_text_body_that_is_a_json_string_is_read_as_json(exchange: Exchange) -> None:
    exchange.handle(headers("response_headers", content_type="text/plain"))
    escaped = b'"SSN \\u0039\\u0030\\u0030-12-3456, mail zed\\u0040example.org"'
    out = exchange.handle(body(escaped, end=True)).response_body.response.body_mutation.body
    assert "900-12-3456" not in json.loads(out) and "zed@example.org" not in json.loads(out)


def test_a_header_is_read_as_utf8_so_no_dash_hides_a_number(exchange: Exchange) -> None:
    header_map = base_pb2.HeaderMap(
        headers=[
            base_pb2.HeaderValue(key="content-type", raw_value=b"application/json"),
            base_pb2.HeaderValue(key="x-note", raw_value="SSN 123\u201045\u20106789".encode()),
        ]
    )
    request = ext_proc.ProcessingRequest(response_headers=ext_proc.HttpHeaders(headers=header_map))
    removed = exchange.handle(request).response_headers.response.header_mutation.remove_headers
    assert "x-note" in removed


@pytest.mark.parametrize(
    ("payload", "refused"),
    [
        ("[" * 3000 + '"SSN \\u0031\\u0032\\u0033-45-6789"' + "]" * 3000, True),
        ('{"note": "SSN 123-45-6789"}'.encode("utf-16-le").decode("latin-1"), True),
        ("4111111111111111", False),  # a bare number is scanned as text
    ],
    ids=["too deep to read", "UTF-16 without a charset", "a bare number"],
)
def test_a_plain_text_body_is_refused_or_masked_never_passed(
    exchange: Exchange, payload: str, refused: bool
) -> None:
    exchange.handle(headers("response_headers", content_type="text/plain"))
    out = exchange.handle(body(payload.encode("latin-1"), end=True))
    assert out.HasField("immediate_response") == refused
    if not refused:
        assert out.response_body.response.body_mutation.body == b"[CARD]"


def test_a_listing_with_a_null_cursor_is_still_filtered(exchange: Exchange) -> None:
    exchange = listing_exchange(exchange.masker, "phi-readers")
    tools = [{"name": "get_patient_record"}, {"name": "delete_patient"}]
    listing = {"jsonrpc": "2.0", "id": 1, "result": {"tools": tools, "nextCursor": None}}
    out = json.loads(sse_out(exchange, f"data: {json.dumps(listing)}\n\n")[6:])
    assert out["result"]["tools"] == [{"name": "get_patient_record"}]


def test_what_an_earlier_event_marks_never_renames_an_event_type_nor_a_word(
    exchange: Exchange,
) -> None:
    exchange.handle(decided(["tools/call"]))
    first = {"jsonrpc": "2.0", "method": "notify", "params": {"name": "message-broker"}}
    second = {"jsonrpc": "2.0", "method": "notify", "params": {"name": "lab-results"}}
    third = {"jsonrpc": "2.0", "id": 1, "result": {"note": "3 results from the lab"}}
    stream = "".join(f"event: message\ndata: {json.dumps(m)}\n\n" for m in (first, second, third))
    out = sse_out(exchange, stream)
    assert out.count("event: message\n") == 3 and "3 results from the lab" in out


def test_a_listing_looks_for_what_earlier_events_of_its_stream_marked(
    exchange: Exchange,
) -> None:
    exchange = listing_exchange(exchange.masker, "phi-readers")
    notice = {"jsonrpc": "2.0", "method": "notify", "params": {"name": "Zed Quux"}}
    tool = {"name": "get_patient_record", "description": "last used for Zed Quux"}
    listing = {"jsonrpc": "2.0", "id": 1, "result": {"tools": [tool]}}
    stream = f"data: {json.dumps(notice)}\n\ndata: {json.dumps(listing)}\n\n"
    assert "Zed" not in sse_out(exchange, stream)


def test_earlier_events_mark_numbers_and_keys_too(exchange: Exchange) -> None:
    exchange.handle(decided(["tools/call"]))
    first = {"jsonrpc": "2.0", "method": "n", "params": {"phone": 5550100123, "name": "Ada Okafor"}}
    second = {"jsonrpc": "2.0", "id": 1, "result": {"callback": 5550100123, "ada okafor": "seen"}}
    out = sse_out(exchange, f"data: {json.dumps(first)}\n\ndata: {json.dumps(second)}\n\n")
    assert "5550100123" not in out and "okafor" not in out.lower()


def test_a_value_too_big_to_carry_does_not_stop_the_others(exchange: Exchange) -> None:
    exchange.handle(decided(["tools/call"]))
    address = "1 Main St " + "x" * 33_000
    first = {"jsonrpc": "2.0", "method": "n", "params": {"address": address, "name": "Ada Okafor"}}
    second = {"jsonrpc": "2.0", "id": 1, "result": {"note": "Okafor called back"}}
    out = sse_out(exchange, f"data: {json.dumps(first)}\n\ndata: {json.dumps(second)}\n\n")
    assert "Okafor" not in out


def test_what_the_caller_may_see_never_hides_an_earlier_name_inside_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fields = "fields:\n  - {path: name, entity: name}\n  - {path: email, entity: email}\n"
    masker = masker_with_exception(monkeypatch, tmp_path, "true", "[email]", more=fields)
    exchange = Exchange(masker)
    exchange.handle(decided(["tools/call"], "staff"))
    record = {"name": "Ada Okafor", "email": "ada.okafor@clinic.example"}
    first = {"jsonrpc": "2.0", "method": "n", "params": record}
    second = {"jsonrpc": "2.0", "id": 1, "result": {"note": "reach ada.okafor@clinic.example"}}
    out = sse_out(exchange, f"data: {json.dumps(first)}\n\ndata: {json.dumps(second)}\n\n")
    assert "okafor" not in out.lower() and "@clinic.example" in out
