"""The MCP request phase: what the policy gets to see of a JSON-RPC body, and which bodies
never reach the policy because they are not JSON-RPC 2.0 (denied 400 with the JSON-RPC
error code a client understands)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from custos.policy import McpCall
from extauthz.errors import McpHeaderMismatch, McpRequestInvalid
from extauthz.mcp_request import (
    INVALID_REQUEST,
    NO_BODY,
    PARSE_ERROR,
    McpRequest,
    check_headers,
    parse_body,
)


def body(document: Any) -> bytes:
    return orjson.dumps(document)


def message(method: Any, params: Any = None, id: Any = 1) -> dict[str, Any]:
    """A JSON-RPC request; the loose types let the table below build broken ones."""
    msg: dict[str, Any] = {"jsonrpc": "2.0", "id": id, "method": method}
    if params is not None:
        msg["params"] = params
    return msg


# --- what the policy sees --------------------------------------------------------------


def test_single_request() -> None:
    request = parse_body(body(message("tools/list", {}, id="req-7")))
    assert request == McpRequest(
        calls=(McpCall(method="tools/list", id="req-7"),),
        is_batch=False,
    )
    assert request.first_id == "req-7"


def test_notification_has_no_id() -> None:
    request = parse_body(b'{"jsonrpc": "2.0", "method": "notifications/initialized"}')
    (call,) = request.calls
    assert (call.method, call.id, call.is_notification) == ("notifications/initialized", None, True)


@pytest.mark.parametrize(
    "answer",
    [{"result": {"action": "accept"}}, {"error": {"code": -1, "message": "declined"}}],
    ids=["result", "error"],
)
def test_client_response_to_a_server_request(answer: dict[str, Any]) -> None:
    # The client answering elicitation or sampling: no method, the policy sees method "".
    request = parse_body(body({"jsonrpc": "2.0", "id": 4, **answer}))
    (call,) = request.calls
    assert (call.method, call.id, call.is_notification) == ("", 4, False)


def test_tools_call_exposes_tool_name_and_arguments() -> None:
    args = {"patient_id": "pt-0001", "fields": ["name", "mrn"], "limit": 5}
    request = parse_body(
        body(message("tools/call", {"name": "get_patient_record", "arguments": args}))
    )
    (call,) = request.calls
    assert call.tool == call.name == "get_patient_record"
    assert call.arguments == args


@pytest.mark.parametrize(
    "method",
    [
        *("initialize", "tools/list", "resources/templates/list", "logging/setLevel"),
        *("notifications/roots/list_changed", "sampling/createMessage", "com.example/sync"),
    ],
)
def test_mcp_method_names_pass(method: str) -> None:
    assert parse_body(body(message(method))).calls[0].method == method


def test_an_escaped_surrogate_pair_is_one_character() -> None:
    assert parse_body(CALL_OF % b"\\ud83d\\ude00").calls[0].tool == "\U0001f600"


def test_tools_call_without_arguments_has_empty_arguments() -> None:
    (call,) = parse_body(body(message("tools/call", {"name": "search_patients"}))).calls
    assert (call.tool, dict(call.arguments)) == ("search_patients", {})


def test_resources_read_exposes_the_uri() -> None:
    (call,) = parse_body(body(message("resources/read", {"uri": "patients://pt-0001"}))).calls
    assert (call.method, call.uri, call.tool) == ("resources/read", "patients://pt-0001", "")


def test_prompts_get_exposes_the_name() -> None:
    (call,) = parse_body(body(message("prompts/get", {"name": "discharge-summary"}))).calls
    assert (call.method, call.name, call.tool) == ("prompts/get", "discharge-summary", "")


def test_batch_keeps_every_call_in_order() -> None:
    request = parse_body(
        body(
            [
                message("tools/call", {"name": "search_patients", "arguments": {"q": "a"}}, id=1),
                {"jsonrpc": "2.0", "method": "notifications/progress"},
                message("tools/call", {"name": "delete_patient", "arguments": {}}, id="two"),
            ]
        )
    )
    assert request.is_batch
    assert [(c.method, c.tool, c.id) for c in request.calls] == [
        ("tools/call", "search_patients", 1),
        ("notifications/progress", "", None),
        ("tools/call", "delete_patient", "two"),
    ]
    assert request.first_id == 1


def test_a_batch_of_one_is_still_a_batch() -> None:
    # The policy and the error body must treat `[msg]` as a batch, not as `msg`.
    request = parse_body(body([message("ping")]))
    assert request.is_batch and len(request.calls) == 1


# --- what is refused -------------------------------------------------------------------


CALL_OF = b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "%s"}}'


@pytest.mark.parametrize(
    "raw",
    [
        *(b"", b"{", b"not json", b'{"jsonrpc": "2.0", "method": "ping",}', b"\xff\xfe"),
        CALL_OF % b"\\ud800",
        CALL_OF % b"get\\uDC00",
        CALL_OF % b"\\ude00\\ud83d",  # a pair, the wrong way round
        b'{"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"_meta": ["\\udbff"]}}',
        CALL_OF % b"\xed\xa0\x80",  # CESU-8: a surrogate written as UTF-8
        '{"jsonrpc": "2.0", "id": 1, "method": "ping"}'.encode("utf-16"),
        b"\xef\xbb\xbf" + CALL_OF % b"get",  # a byte order mark
    ],
    ids=[
        *("empty", "truncated", "text", "trailing-comma", "not-utf8", "lone-high-surrogate"),
        *("lone-low-surrogate", "reversed-pair", "surrogate-in-a-list", "cesu-8", "utf-16"),
        "byte-order-mark",
    ],
)
def test_not_json_is_a_parse_error(raw: bytes) -> None:
    with pytest.raises(McpRequestInvalid) as info:
        parse_body(raw)
    assert info.value.jsonrpc_code == PARSE_ERROR == -32700


INVALID: list[tuple[str, Any]] = [
    ("empty batch", []),
    ("a string", "tools/list"),
    ("null", None),
    ("no jsonrpc member", {"id": 1, "method": "ping"}),
    ("jsonrpc 1.0", {"jsonrpc": "1.0", "id": 1, "method": "ping"}),
    ("jsonrpc as a number", {"jsonrpc": 2.0, "id": 1, "method": "ping"}),
    ("id true", message("ping", id=True)),
    ("id float", message("ping", id=1.5)),
    ("id object", message("ping", id={"n": 1})),
    ("id null", message("ping", id=None)),  # MCP: a request id MUST NOT be null
    ("method empty", message("")),
    ("method not a string", message(7)),
    ("method with a relative segment", message("notifications/../tools/call")),
    ("method with an empty segment", message("tools//call")),
    ("method with a leading slash", message("/tools/call")),
    ("method with a trailing slash", message("tools/call/")),
    ("method with a space", message("tools/call ")),
    ("method with a line break", message("tools/call\n")),
    ("method opening with a digit", message("1tools/call")),
    ("method beyond ASCII", message("tools/c\u0430ll")),  # a Cyrillic a
    ("method too long", message("a" * 129)),
    ("notification with a relative segment", {"jsonrpc": "2.0", "method": "notifications/.."}),
    ("params a list", message("tools/list", [1])),
    ("params a string", message("tools/list", "x")),
    ("tools/call without name", message("tools/call", {"arguments": {}})),
    ("tools/call name empty", message("tools/call", {"name": ""})),
    ("tools/call name not a string", message("tools/call", {"name": ["a", "b"]})),
    ("tools/call arguments a list", message("tools/call", {"name": "t", "arguments": [1]})),
    ("tools/call arguments a string", message("tools/call", {"name": "t", "arguments": "x"})),
    ("resources/read without uri", message("resources/read", {})),
    ("prompts/get without name", message("prompts/get", {})),
    ("response with neither result nor error", {"jsonrpc": "2.0", "id": 1}),
    ("response with both", {"jsonrpc": "2.0", "id": 1, "result": {}, "error": {}}),
    ("response without id", {"jsonrpc": "2.0", "result": {}}),
    ("batch with one bad member", [message("ping"), {"jsonrpc": "2.0", "id": 2}]),
    ("batch with a non-object", [message("ping"), 3]),
    ("batch with one id twice", [message("ping", id=7), message("tools/list", id="7")]),
]


@pytest.mark.parametrize("document", [d for _, d in INVALID], ids=[n for n, _ in INVALID])
def test_invalid_json_rpc_is_an_invalid_request(document: Any) -> None:
    with pytest.raises(McpRequestInvalid) as info:
        parse_body(body(document))
    assert info.value.jsonrpc_code == INVALID_REQUEST == -32600
    assert not isinstance(info.value, McpHeaderMismatch)


# --- Mcp-Method / Mcp-Name headers -----------------------------------------------------

TOOLS_CALL = parse_body(body(message("tools/call", {"name": "search_patients"})))
RESOURCE_READ = parse_body(body(message("resources/read", {"uri": "patients://pt-1"})))
PROMPT_GET = parse_body(body(message("prompts/get", {"name": "summary"})))


@pytest.mark.parametrize(
    ("request_", "headers"),
    [
        (TOOLS_CALL, {}),
        (TOOLS_CALL, {"mcp-method": "tools/call"}),
        (TOOLS_CALL, {"mcp-method": "tools/call", "mcp-name": "search_patients"}),
        (TOOLS_CALL, {"mcp-name": "search_patients"}),
        (RESOURCE_READ, {"mcp-method": "resources/read", "mcp-name": "patients://pt-1"}),
        (PROMPT_GET, {"mcp-method": "prompts/get", "mcp-name": "summary"}),
        (NO_BODY, {}),
    ],
    ids=["none", "method", "both", "name", "resource", "prompt", "no-body"],
)
def test_headers_that_agree_with_the_body_pass(
    request_: McpRequest, headers: dict[str, str]
) -> None:
    check_headers(request_, headers)  # raises if refused


@pytest.mark.parametrize(
    ("request_", "headers"),
    [
        (TOOLS_CALL, {"mcp-method": "tools/list"}),
        (TOOLS_CALL, {"mcp-method": "tools/call", "mcp-name": "delete_patient"}),
        (TOOLS_CALL, {"mcp-name": "delete_patient"}),
        (TOOLS_CALL, {"mcp-method": "Tools/Call"}),
        (RESOURCE_READ, {"mcp-name": "patients://pt-2"}),
        (PROMPT_GET, {"mcp-method": "prompts/get", "mcp-name": "other"}),
        (NO_BODY, {"mcp-method": "tools/call"}),
    ],
    ids=["method", "name", "name-only", "case", "resource", "prompt", "no-body"],
)
def test_headers_that_disagree_with_the_body_are_refused(
    request_: McpRequest, headers: dict[str, str]
) -> None:
    # A router that trusted the header while the server acted on the body would be fooled.
    with pytest.raises(McpHeaderMismatch) as info:
        check_headers(request_, headers)
    assert info.value.jsonrpc_code == INVALID_REQUEST


def test_headers_with_a_batch_are_refused() -> None:
    # One header cannot describe several calls; even a matching one must not pass.
    batch = parse_body(
        body(
            [
                message("tools/call", {"name": "search_patients"}, id=1),
                message("tools/call", {"name": "delete_patient"}, id=2),
            ]
        )
    )
    with pytest.raises(McpHeaderMismatch):
        check_headers(batch, {"mcp-method": "tools/call", "mcp-name": "search_patients"})
    check_headers(batch, {})  # without the headers the batch goes on to the policy
