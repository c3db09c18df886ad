"""A request whose JSON-RPC id is still in flight in its MCP session is refused before it
reaches the server (the SDK routes answers by id, 7 and "7" alike), and an answer carries
the responses to its own stream's requests only."""

from __future__ import annotations

import json

import pytest
from envoy.service.ext_proc.v3 import external_processor_pb2 as ext_proc

from extproc.exchange import Exchange
from extproc.in_flight import IdInFlight, InFlight, InFlightFull
from extproc.masking.config import MaskingConfig
from extproc.masking.engine import Masker
from tests.extproc.test_exchange import body, headers

MASKER = Masker(MaskingConfig())


def asked(exchange: Exchange, *calls: tuple[object, str], session: str = "s-1") -> int:
    """The request's headers and body; the HTTP status of a refusal, or 0."""
    exchange.handle(headers("request_headers", mcp_session_id=session))
    messages = [{"jsonrpc": "2.0", "id": i, "method": m} for i, m in calls]
    raw = json.dumps(messages if len(messages) > 1 else messages[0]).encode()
    response = exchange.handle(
        ext_proc.ProcessingRequest(request_body=ext_proc.HttpBody(body=raw, end_of_stream=True))
    )
    return response.immediate_response.status.code if response.HasField("immediate_response") else 0


@pytest.mark.parametrize("again", [7, "7"], ids=["the same id", "its string"])
def test_an_id_in_flight_in_the_session_is_refused_until_its_exchange_ends(again: object) -> None:
    table = InFlight()
    first = Exchange(MASKER, in_flight=table)
    assert asked(first, (7, "tools/call")) == 0
    second = Exchange(MASKER, in_flight=table)
    assert asked(second, (again, "ping")) == 409
    assert second.finished == "refused"
    assert asked(Exchange(MASKER, in_flight=table), (7, "ping"), session="s-2") == 0  # other
    assert asked(Exchange(MASKER, in_flight=table), ([8, 9], "ping")) == 0  # no id: not held
    first.release()
    assert asked(Exchange(MASKER, in_flight=table), (again, "ping")) == 0


def test_a_batch_reusing_one_id_in_flight_is_refused_whole() -> None:
    table = InFlight()
    assert asked(Exchange(MASKER, in_flight=table), (1, "tools/call")) == 0
    batch = Exchange(MASKER, in_flight=table)
    assert asked(batch, (2, "ping"), (1, "ping")) == 409
    assert asked(Exchange(MASKER, in_flight=table), (2, "ping")) == 0  # nothing was held


def test_a_request_without_a_session_holds_nothing() -> None:
    table = InFlight()
    for _ in range(2):
        assert asked(Exchange(MASKER, in_flight=table), (1, "initialize"), session="") == 0
    assert len(table) == 0


def test_the_table_is_bounded_in_all_and_per_session() -> None:
    table = InFlight(most=3, per_session=2)
    first = table.claim("s", [1, 2])
    with pytest.raises(InFlightFull):
        table.claim("s", [3])  # the session's share is used up
    with pytest.raises(IdInFlight):
        table.claim("s", ["2"])
    table.claim("t", [1])
    with pytest.raises(InFlightFull):
        table.claim("u", [1])  # the whole table is
    table.release(first)
    table.claim("s", [3, 4])


def test_an_exchange_that_ended_holds_no_id_it_would_claim_late() -> None:
    # A body masked in a worker thread that outlives its exchange (refused at the time
    # limit, its stream gone) must not hold the session's ids for good.
    table = InFlight()
    late = Exchange(MASKER, in_flight=table)
    late.handle(headers("request_headers", mcp_session_id="s-1"))
    late.release()
    raw = json.dumps({"jsonrpc": "2.0", "id": 5, "method": "ping"}).encode()
    response = late.handle(
        ext_proc.ProcessingRequest(request_body=ext_proc.HttpBody(body=raw, end_of_stream=True))
    )
    assert response.HasField("immediate_response") and len(table) == 0


def answered(calls: list[tuple[object, str]], *answers: dict[str, object]) -> int:
    """A buffered answer to these calls: the status of a refusal, or 0."""
    exchange = Exchange(MASKER, in_flight=InFlight())
    assert asked(exchange, *calls) == 0
    exchange.handle(headers("response_headers", content_type="application/json"))
    raw = json.dumps(list(answers) if len(answers) > 1 else answers[0]).encode()
    response = exchange.handle(body(raw, end=True))
    return response.immediate_response.status.code if response.HasField("immediate_response") else 0


RECORD = {"content": [{"type": "text", "text": "Ada Okafor, SSN 123-45-6789"}]}


def test_an_answer_carries_its_own_requests_responses_only() -> None:
    ok = {"jsonrpc": "2.0", "id": "7", "result": RECORD}  # "7" answers 7, as the SDK reads it
    assert answered([(7, "tools/call")], ok) == 0
    other = {"jsonrpc": "2.0", "id": 8, "result": RECORD}
    assert answered([(7, "tools/call")], other) == 502
    unreadable = {"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "x"}}
    assert answered([(7, "tools/call")], unreadable) == 0


@pytest.mark.parametrize(
    ("reply", "status"),
    [
        ({"result": {}}, 0),
        ({"result": {"_meta": {}}}, 0),
        ({"error": {"code": -32603, "message": "busy"}}, 0),
        ({"result": RECORD}, 502),
        ({"result": [RECORD]}, 502),
        ({"result": "Ada Okafor, HIV positive"}, 502),
        ({"result": {"_meta": {"note": "HIV positive"}}}, 502),
        ({"error": {"code": 1, "message": "x", "data": {"note": "HIV positive"}}}, 502),
    ],
    ids=["empty", "empty-meta", "error", "record", "list", "text", "meta", "error-data"],
)
def test_a_ping_is_answered_by_an_empty_result_or_refused(
    reply: dict[str, object], status: int
) -> None:
    assert answered([(1, "ping")], {"jsonrpc": "2.0", "id": 1, **reply}) == status


def test_a_result_without_a_request_of_its_own_is_refused() -> None:
    nobody = {"jsonrpc": "2.0", "id": None, "result": RECORD}
    assert answered([(7, "tools/call")], nobody) == 502
    twice = [
        {"jsonrpc": "2.0", "id": 7, "result": {}},
        {"jsonrpc": "2.0", "id": "7", "result": RECORD},
    ]
    assert answered([(7, "tools/call")], *twice) == 502
    assert answered([(True, "tools/call")], {"jsonrpc": "2.0", "id": True, "result": RECORD}) == 502


def test_a_post_of_notifications_alone_is_answered_by_no_response() -> None:
    exchange = Exchange(MASKER, in_flight=InFlight())
    exchange.handle(headers("request_headers", mcp_session_id="s-1"))
    note = json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}).encode()
    exchange.handle(
        ext_proc.ProcessingRequest(request_body=ext_proc.HttpBody(body=note, end_of_stream=True))
    )
    exchange.handle(headers("response_headers", content_type="application/json"))
    stray = json.dumps({"jsonrpc": "2.0", "id": 7, "result": RECORD}).encode()
    assert exchange.handle(body(stray, end=True)).immediate_response.status.code == 502
