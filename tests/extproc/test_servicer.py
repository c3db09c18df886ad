"""The ext_proc servicer's stream handling: big bodies off the event loop, with a limit."""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import AsyncIterator, Iterable

import pytest
from envoy.config.core.v3 import base_pb2
from envoy.service.ext_proc.v3 import external_processor_pb2 as ext_proc
from envoy.type.v3 import http_status_pb2

from custos.stack import EXAMPLE_MASKING
from extproc.masking.config import load_masking_config
from extproc.masking.engine import Masker
from extproc.metrics import MaskingMetrics
from extproc.servicer import ExternalProcessorServicer

NOTE = "Patient Ada Okafor (DOB 1961-04-12) called from (555) 010-0101 about her SSN 123-45-6789. "


def json_headers() -> ext_proc.ProcessingRequest:
    header = base_pb2.HeaderValue(key="content-type", raw_value=b"application/json")
    return ext_proc.ProcessingRequest(
        response_headers=ext_proc.HttpHeaders(headers=base_pb2.HeaderMap(headers=[header]))
    )


def answer(notes: int) -> ext_proc.ProcessingRequest:
    result = {"content": [{"type": "text", "text": NOTE * notes}]}
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "result": result}).encode()
    return ext_proc.ProcessingRequest(
        response_body=ext_proc.HttpBody(body=body, end_of_stream=True)
    )


async def messages(
    *requests: ext_proc.ProcessingRequest,
) -> AsyncIterator[ext_proc.ProcessingRequest]:
    for request in requests:
        yield request


async def responses(
    servicer: ExternalProcessorServicer, requests: Iterable[ext_proc.ProcessingRequest]
) -> list[ext_proc.ProcessingResponse]:
    return [r async for r in servicer.Process(messages(*requests), None)]  # type: ignore[arg-type]


def masker(monkeypatch: pytest.MonkeyPatch, **settings: object) -> Masker:
    monkeypatch.setenv("CUSTOS_PSEUDONYM_KEY", "servicer-test-key-0123456789")
    config = load_masking_config(EXAMPLE_MASKING).model_copy(update=settings)
    return Masker(config)


async def test_a_body_that_takes_too_long_to_mask_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    metrics = MaskingMetrics()
    servicer = ExternalProcessorServicer(masker(monkeypatch, mask_timeout_ms=10), metrics=metrics)
    big = answer(notes=20_000)  # about 1.7 MB of notes: far more than 10 ms of masking
    _, refused = await responses(servicer, [json_headers(), big])
    immediate = refused.immediate_response
    assert immediate.status.code == http_status_pb2.BadGateway
    assert immediate.details == "masking_failed"
    assert b"123-45-6789" not in immediate.body and b"Okafor" not in immediate.body
    refusals = metrics.registry.get_sample_value(
        "custos_masking_refusals_total", {"code": "masking_failed"}
    )
    assert refusals == 1


async def test_a_small_gzip_body_that_inflates_is_held_to_the_limit_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Small on the wire, megabytes once inflated: judged by what it becomes.
    servicer = ExternalProcessorServicer(masker(monkeypatch, mask_timeout_ms=10))
    header = base_pb2.HeaderValue(key="content-type", raw_value=b"application/json")
    encoding = base_pb2.HeaderValue(key="content-encoding", raw_value=b"gzip")
    gzip_headers = ext_proc.ProcessingRequest(
        response_headers=ext_proc.HttpHeaders(
            headers=base_pb2.HeaderMap(headers=[header, encoding])
        )
    )
    inflating = answer(notes=20_000)
    inflating.response_body.body = gzip.compress(inflating.response_body.body)
    assert len(inflating.response_body.body) < 64 * 1024
    _, refused = await responses(servicer, [gzip_headers, inflating])
    assert refused.immediate_response.details == "masking_failed"


async def test_a_big_body_does_not_hold_up_small_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    metrics = MaskingMetrics()
    servicer = ExternalProcessorServicer(masker(monkeypatch), metrics=metrics)
    finished: list[str] = []

    async def exchange(name: str, notes: int) -> list[ext_proc.ProcessingResponse]:
        out = await responses(servicer, [json_headers(), answer(notes)])
        finished.append(name)
        return out

    big = asyncio.create_task(exchange("big", notes=5_000))  # ~0.4 MB, masked in a thread
    await asyncio.sleep(0.01)  # the big body is being masked
    small = await exchange("small", notes=1)
    assert finished[0] == "small"
    for response in (await big)[1], small[1]:
        masked = response.response_body.response.body_mutation.body.decode()
        assert "123-45-6789" not in masked and "Okafor" not in masked
    observed = metrics.registry.get_sample_value(
        "custos_extproc_message_seconds_count", {"kind": "response_body"}
    )
    assert observed == 2


def call_in_session(call_id: object) -> list[ext_proc.ProcessingRequest]:
    session = base_pb2.HeaderValue(key="mcp-session-id", raw_value=b"s-1")
    call = {"jsonrpc": "2.0", "id": call_id, "method": "tools/call", "params": {"name": "t"}}
    return [
        ext_proc.ProcessingRequest(
            request_headers=ext_proc.HttpHeaders(headers=base_pb2.HeaderMap(headers=[session]))
        ),
        ext_proc.ProcessingRequest(
            request_body=ext_proc.HttpBody(body=json.dumps(call).encode(), end_of_stream=True)
        ),
    ]


async def test_an_id_is_freed_when_its_stream_ends_unanswered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    servicer = ExternalProcessorServicer(masker(monkeypatch))
    await responses(servicer, call_in_session(7))  # the client went away before the answer
    again = await responses(servicer, call_in_session("7"))
    assert not any(r.HasField("immediate_response") for r in again)


async def test_a_second_call_with_an_id_in_flight_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    servicer = ExternalProcessorServicer(masker(monkeypatch))
    pending: asyncio.Queue[ext_proc.ProcessingRequest | None] = asyncio.Queue()

    async def held() -> AsyncIterator[ext_proc.ProcessingRequest]:
        while (request := await pending.get()) is not None:
            yield request

    first = servicer.Process(held(), None)  # type: ignore[arg-type]
    for request in call_in_session(7):
        await pending.put(request)
        await anext(first)  # the first call is in flight, its answer not come
    (_, refused) = await responses(servicer, call_in_session("7"))
    assert refused.immediate_response.status.code == 409
    await pending.put(None)
    assert [r async for r in first] == []
    (_, passed) = await responses(servicer, call_in_session(7))
    assert not passed.HasField("immediate_response")
