"""Envoy's edge limits in the bootstrap the project ships, on the real stack: a global
connection limit, a time limit for a request's headers, and a bound on their number."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from custos.audit.audit_pb2 import Exchange
from custos.stack import LocalStack
from tests.stack_fixture import (
    INITIALIZE,
    post_jsonrpc,
    running_stack,
    spooled,
    token,
    upstream_requests,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

MAX_CONNECTIONS = 4


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LocalStack]:
    run = tmp_path_factory.mktemp("limits")
    async with running_stack(
        run, max_connections=MAX_CONNECTIONS, request_headers_timeout_s=1
    ) as running:
        yield running


async def connected(stack: LocalStack) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", stack.ports.envoy)


async def closed_within(reader: asyncio.StreamReader, seconds: float) -> bool:
    """Whether Envoy closes the connection (whatever it says first) within `seconds`."""
    deadline = time.monotonic() + seconds
    with contextlib.suppress(ConnectionError):
        while (left := deadline - time.monotonic()) > 0:
            try:
                if not await asyncio.wait_for(reader.read(65536), left):
                    return True
            except TimeoutError:
                return False
        return False
    return True


async def test_envoy_starts_with_a_connection_limit(stack: LocalStack) -> None:
    assert not [line for line in stack.output if "no configured limit" in line]


async def test_a_client_dripping_its_headers_is_cut_off(stack: LocalStack) -> None:
    reader, writer = await connected(stack)
    writer.write(b"POST /mcp HTTP/1.1\r\nHost: custos\r\n")
    dripping = asyncio.create_task(drip(writer))
    try:
        assert await closed_within(reader, 6)  # 1 s allowed, and Envoy's delayed close
    finally:
        dripping.cancel()
        writer.close()


async def drip(writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        for n in range(100):
            writer.write(f"x-drip-{n}: 1\r\n".encode())
            await writer.drain()
            await asyncio.sleep(0.3)


async def test_a_request_with_too_many_headers_goes_no_further(stack: LocalStack) -> None:
    bearer = await token(stack, "alice", ["phi-readers"])
    before = len(upstream_requests(stack))
    many = {f"x-extra-{n}": "1" for n in range(150)}
    response = await post_jsonrpc(stack, INITIALIZE, bearer, headers=many)
    assert response.status_code == 431
    assert len(upstream_requests(stack)) == before


BODY = b'{"jsonrpc":"2.0","id":1,"method":"ping"}'
REFUSED_BY_ENVOY = {
    "http/1.0": (b"POST /mcp HTTP/1.0\r\nHost: c\r\n\r\n", 426),
    "lowercase method": (b"post /mcp HTTP/1.1\r\nHost: c\r\n\r\n", 400),
    "content-length and chunked": (
        b"POST /mcp HTTP/1.1\r\nHost: c\r\nContent-Length: 40\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
    ),
    "two content-lengths": (
        b"POST /mcp HTTP/1.1\r\nHost: c\r\nContent-Length: 40\r\nContent-Length: 41\r\n\r\n" + BODY,
        400,
    ),
    "a NUL in a header": (b"POST /mcp HTTP/1.1\r\nHost: c\r\nX-A: a\x00b\r\n\r\n", 400),
    "an unknown method": (b"FOO /mcp HTTP/1.1\r\nHost: c\r\nContent-Length: 2\r\n\r\n{}", 400),
    "the target *": (b"POST * HTTP/1.1\r\nHost: c\r\nContent-Length: 2\r\n\r\n{}", 400),
    "a 100 KB header": (
        b"GET /mcp HTTP/1.1\r\nHost: c\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n",
        431,
    ),
}


@pytest.mark.parametrize("name", REFUSED_BY_ENVOY)
async def test_envoys_own_refusals_reach_the_client(stack: LocalStack, name: str) -> None:
    request, status = REFUSED_BY_ENVOY[name]
    reader, writer = await connected(stack)
    try:
        writer.write(request)
        started = time.monotonic()
        line = await asyncio.wait_for(reader.readline(), 3)
        assert line.startswith(f"HTTP/1.1 {status} ".encode()), line
        assert time.monotonic() - started < 0.5  # at once, not after a second's silence
    finally:
        writer.close()


async def test_connections_beyond_the_limit_are_closed_and_the_rest_served(
    stack: LocalStack,
) -> None:
    held = [await connected(stack) for _ in range(MAX_CONNECTIONS)]
    try:
        await asyncio.sleep(0.2)
        reader, writer = await connected(stack)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: custos\r\n\r\n")
        assert await closed_within(reader, 3)
        writer.close()
    finally:
        for _, w in held:
            w.close()
    await asyncio.sleep(0.5)
    bearer = await token(stack, "alice", ["phi-readers"])
    assert (await post_jsonrpc(stack, INITIALIZE, bearer)).status_code == 200


async def edge_records(stack: LocalStack, status: int) -> list[Exchange]:
    """The records of the edge's refusals with this status, once one is in the spool."""
    return await spooled(stack, lambda r: r.decision.code == "envoy_refused" and r.status == status)


async def test_each_refusal_of_the_edge_is_an_audit_record(stack: LocalStack) -> None:
    reader, writer = await connected(stack)
    writer.write(b"POST /mcp?access_token=s3cr3t HTTP/1.0\r\nHost: c\r\n\r\n")
    assert (await asyncio.wait_for(reader.readline(), 3)).startswith(b"HTTP/1.1 426 ")
    writer.close()
    (record,) = await edge_records(stack, 426)
    assert record.outcome == "refused"
    assert record.http_path in ("", "/mcp?access_token=[REDACTED]")  # as far as it was read
    assert record.source_address == "127.0.0.1" and record.request_id
    assert "s3cr3t" not in str(record)


async def test_an_invalid_http2_frame_gets_a_goaway(stack: LocalStack) -> None:
    reader, writer = await connected(stack)
    try:
        # The HTTP/2 preface, then a frame of an unknown layout where SETTINGS must come.
        writer.write(
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x04\x07\x00\x00\x00\x00\x01oops"
        )
        frames = await asyncio.wait_for(reader.read(4096), 3)
        kinds = []
        while len(frames) >= 9:  # frame header: length (3), type (1), flags (1), stream (4)
            length = int.from_bytes(frames[:3], "big")
            kinds.append(frames[3])
            frames = frames[9 + length :]
        assert 0x07 in kinds  # GOAWAY: the client is told, not left hanging
    finally:
        writer.close()


async def test_a_request_body_over_the_bound_is_refused_at_the_edge_and_recorded(
    stack: LocalStack,
) -> None:
    bearer = await token(stack, "alice", ["phi-readers"])
    before = len(upstream_requests(stack))
    huge = {**INITIALIZE, "params": {**INITIALIZE["params"], "pad": "x" * 2_000_000}}
    response = await post_jsonrpc(stack, huge, bearer)
    assert response.status_code == 413
    assert len(upstream_requests(stack)) == before
    (record,) = await edge_records(stack, 413)
    assert record.http_method == "POST" and record.http_path == "/mcp"
