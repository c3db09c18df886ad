"""Envoy's edge limits in the bootstrap the project ships, on the real stack: connections
bounded in number, idleness and drain, requests in time, headers and size, memory per
client connection and for the whole process, and HTTP/2 streams and windows."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import h2.connection
import h2.events
import httpx
import pytest
import pytest_asyncio
from h2.config import H2Configuration
from h2.events import WindowUpdated

from custos.audit.audit_pb2 import Exchange
from custos.envoy_config import EnvoySettings, render_bootstrap
from custos.net import free_ports, wait_for_port
from custos.stack import LocalStack
from tests.processes import custos
from tests.stack_fixture import (
    INITIALIZE,
    MCP_HEADERS,
    post_jsonrpc,
    running_stack,
    spooled,
    token,
    tool_call,
    upstream_requests,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

MAX_CONNECTIONS = 4
IDLE_SECONDS = 2
DRAIN_SECONDS = 1
REQUEST_SECONDS = 2
# The patient record's note, padded: an answer far above a connection's 32 KiB.
NOTE_BYTES = 300_000


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LocalStack]:
    run = tmp_path_factory.mktemp("limits")
    async with running_stack(
        run,
        demo_env={"DEMO_MCP_NOTE_BYTES": str(NOTE_BYTES)},
        max_connections=MAX_CONNECTIONS,
        request_headers_timeout_s=1,
        request_timeout_s=REQUEST_SECONDS,
        connection_idle_timeout_s=IDLE_SECONDS,
        drain_timeout_s=DRAIN_SECONDS,
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
        # The kubelet's probes are still answered: the pod is busy, not dead.
        async with httpx.AsyncClient() as client:
            ready = await client.get(f"http://127.0.0.1:{stack.ports.envoy_ready}/ready")
        assert ready.status_code == 200
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


GOAWAY = 0x07


def frame_kinds(frames: bytes) -> list[int]:
    """The types of the HTTP/2 frames in these bytes, read as they are."""
    kinds = []
    while len(frames) >= 9:  # frame header: length (3), type (1), flags (1), stream (4)
        length = int.from_bytes(frames[:3], "big")
        kinds.append(frames[3])
        frames = frames[9 + length :]
    return kinds


async def test_an_invalid_http2_frame_gets_a_goaway(stack: LocalStack) -> None:
    reader, writer = await connected(stack)
    try:
        # The HTTP/2 preface, then a frame of an unknown layout where SETTINGS must come.
        writer.write(
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x04\x07\x00\x00\x00\x00\x01oops"
        )
        frames = await asyncio.wait_for(reader.read(4096), 3)
        assert GOAWAY in frame_kinds(frames)  # the client is told, not left hanging
    finally:
        writer.close()


async def test_a_request_body_over_the_bound_is_refused_at_the_edge_and_recorded(
    stack: LocalStack,
) -> None:
    bearer = await token(stack, "alice", ["phi-readers"])
    # Just under the bound, a body is still held whole, 32 KiB per connection or not.
    big = {**INITIALIZE, "params": {**INITIALIZE["params"], "pad": "x" * 1_000_000}}
    assert (await post_jsonrpc(stack, big, bearer)).status_code == 200
    before = len(upstream_requests(stack))
    huge = {**INITIALIZE, "params": {**INITIALIZE["params"], "pad": "x" * 2_000_000}}
    response = await post_jsonrpc(stack, huge, bearer)
    assert response.status_code == 413
    assert len(upstream_requests(stack)) == before
    (record,) = await edge_records(stack, 413)
    assert record.http_method == "POST" and record.http_path == "/mcp"


async def test_an_idle_connection_is_closed(stack: LocalStack) -> None:
    reader, writer = await connected(stack)
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: custos\r\n\r\n")
        assert (await asyncio.wait_for(reader.readline(), 3)).startswith(b"HTTP/1.1 200 ")
        assert not await closed_within(reader, IDLE_SECONDS / 2)  # kept alive for a next one
        # Then idle: Envoy drains the connection, and closes it (1 s for a last byte).
        assert await closed_within(reader, IDLE_SECONDS / 2 + DRAIN_SECONDS + 2)
    finally:
        writer.close()


async def envoy_stat(admin_port: int, name: str) -> int:
    async with httpx.AsyncClient() as client:
        stats = await client.get(f"http://127.0.0.1:{admin_port}/stats?filter=^{name}$")
    (line,) = stats.text.splitlines()
    return int(line.rpartition(": ")[2])


async def test_envoy_waits_for_a_slow_reader_rather_than_queue_its_answer(
    stack: LocalStack,
) -> None:
    bearer = await token(stack, "alice", ["phi-readers"])
    session = (await post_jsonrpc(stack, INITIALIZE, bearer)).headers["mcp-session-id"]
    call = json.dumps(tool_call("get_patient_record", {"patient_id": "pt-0001"}, 2)).encode()
    paused = "cluster.mcp_inner.upstream_flow_control_paused_reading_total"
    before = await envoy_stat(stack.ports.envoy_admin, paused)
    # A client whose socket takes 4 KiB and which reads nothing for now.
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", stack.ports.envoy))
    reader, writer = await asyncio.open_connection(sock=sock, limit=4096)
    try:
        headers = {**MCP_HEADERS, "authorization": f"Bearer {bearer}", "mcp-session-id": session}
        writer.write(
            b"POST /mcp HTTP/1.1\r\nHost: custos\r\n"
            + b"".join(f"{k}: {v}\r\n".encode() for k, v in headers.items())
            + f"content-length: {len(call)}\r\n\r\n".encode()
            + call
        )
        # The edge queues 32 KiB of the answer for this client, then stops reading it from
        # behind until the client takes some: the rest waits where it was masked, not in
        # a second copy per slow client (at 1 MiB, this answer would fit in the queue).
        for _ in range(100):
            if await envoy_stat(stack.ports.envoy_admin, paused) > before:
                break
            await asyncio.sleep(0.1)
        else:
            pytest.fail("Envoy queued the whole answer for a client that reads nothing")
        answer = b""
        while not answer.endswith(b"\r\n0\r\n\r\n"):  # the last chunk: the answer is whole
            answer += await asyncio.wait_for(reader.read(65536), 10)
        assert answer.startswith(b"HTTP/1.1 200 ")
        assert b'"result"' in answer and len(answer) > NOTE_BYTES
    finally:
        writer.close()


class Http2:
    """A client's HTTP/2 connection, frame by frame (the h2 library keeps its state)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.connection = h2.connection.H2Connection(H2Configuration(client_side=True))
        self.closed = False

    @classmethod
    async def open(cls, port: int) -> Http2:
        """A connection past the handshake: Envoy's settings and its window are known."""
        client = cls(*await asyncio.open_connection("127.0.0.1", port))
        client.connection.initiate_connection()
        client.writer.write(client.connection.data_to_send())
        connection_window = lambda e: isinstance(e, WindowUpdated) and e.stream_id == 0  # noqa: E731
        assert any(map(connection_window, await client.receive(5, until=connection_window)))
        return client

    async def receive(
        self, seconds: float, until: Callable[[h2.events.Event], bool] = lambda _: False
    ) -> list[h2.events.Event]:
        """What Envoy sends within `seconds`, up to an event `until` accepts or the close."""
        events: list[h2.events.Event] = []
        deadline = time.monotonic() + seconds
        while not self.closed and (left := deadline - time.monotonic()) > 0:
            try:
                data = await asyncio.wait_for(self.reader.read(65536), left)
            except TimeoutError:
                break
            except ConnectionError:
                data = b""
            if not data:
                self.closed = True
                break
            events += self.connection.receive_data(data)
            self.writer.write(self.connection.data_to_send())
            if any(map(until, events)):
                break
        return events

    def start_request(self, method: str = "POST", path: str = "/mcp") -> None:
        """A GET, or a POST whose body never comes: the stream stays open."""
        stream = self.connection.get_next_available_stream_id()
        headers = [(":method", method), (":path", path), (":scheme", "http")]
        headers += [(":authority", "custos")]
        if method == "POST":
            headers += [("content-length", "2")]
        self.connection.send_headers(stream, headers, end_stream=method == "GET")
        self.writer.write(self.connection.data_to_send())

    def close(self) -> None:
        self.writer.close()


async def test_http2_clients_are_given_the_edge_stream_and_window_limits(
    stack: LocalStack,
) -> None:
    client = await Http2.open(stack.ports.envoy)
    try:
        given = client.connection.remote_settings
        assert given.max_concurrent_streams == 100
        assert given.initial_window_size == 65_536  # what a client may send on one stream
        assert client.connection.outbound_flow_control_window == 1_048_576  # and on all
    finally:
        client.close()


async def test_a_client_past_the_stream_limit_loses_its_connection(stack: LocalStack) -> None:
    client = await Http2.open(stack.ports.envoy)
    try:
        # A client that ignores the limit Envoy gave it.
        client.connection.remote_settings.max_concurrent_streams = 1000
        client.connection.remote_settings.acknowledge()
        for _ in range(100):
            client.start_request()
        await client.receive(1.5)
        assert not client.closed  # 100 streams at once are allowed
        client.start_request()
        await client.receive(5)
        assert client.closed
    finally:
        client.close()


@contextlib.asynccontextmanager
async def another_envoy(
    stack: LocalStack, folder: Path, **changes: Any
) -> AsyncIterator[EnvoySettings]:
    """A second Envoy before the stack's services, with some settings changed, started as
    the chart's container starts it."""
    listen, admin, ready = free_ports(3)
    ports = {"listen_port": listen, "admin_port": admin, "ready_port": ready}
    settings = EnvoySettings(**{**stack.envoy_settings().model_dump(), **ports, **changes})
    bootstrap = folder / "envoy.yaml"
    bootstrap.write_text(render_bootstrap(settings))
    with (folder / "envoy.log").open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            *custos("envoy", "--config", bootstrap, "--", "--log-level", "warn"),
            stdout=log,
            stderr=log,
        )
    try:
        await asyncio.wait_for(wait_for_port("127.0.0.1", listen), 30)
        yield settings
    finally:
        process.terminate()
        await process.wait()


async def test_envoy_short_of_memory_refuses_requests_and_records_each(
    stack: LocalStack, tmp_path: Path
) -> None:
    bearer = await token(stack, "alice", ["phi-readers"])
    # A heap bound below what Envoy holds at rest: it is short of memory from the start.
    async with another_envoy(stack, tmp_path, max_heap_bytes=1_048_576) as envoy:
        refusing = "overload.envoy.overload_actions.stop_accepting_requests.active"
        for _ in range(100):  # the overload manager's first reading, within a quarter second
            if await envoy_stat(envoy.admin_port, refusing):
                break
            await asyncio.sleep(0.05)
        headers = {**MCP_HEADERS, "authorization": f"Bearer {bearer}"}
        async with httpx.AsyncClient() as client:
            response = await client.post(
                f"http://127.0.0.1:{envoy.listen_port}/mcp", json=INITIALIZE, headers=headers
            )
        assert (response.status_code, response.text) == (503, "envoy overloaded")
        # The kubelet's liveness probe still finds Envoy alive: it is not restarted for it.
        async with httpx.AsyncClient() as client:
            alive = await client.get(f"http://127.0.0.1:{envoy.ready_port}/ready")
        assert alive.status_code == 200
        # Its access log reaches ext_proc, which records the refusal.
        (record, *_) = await spooled(
            stack, lambda r: r.decision.code == "envoy_refused" and r.decision.reason == "overload"
        )
        through = f"127.0.0.1:{envoy.listen_port}"
    assert [r for r in upstream_requests(stack) if r["headers"]["host"] == through] == []
    assert record.status == 503 and record.outcome == "refused"
    assert bearer not in str(record)


async def test_a_draining_envoy_sends_http2_clients_away_within_its_drain_timeout(
    stack: LocalStack, tmp_path: Path
) -> None:
    # Idle connections last: only the drain ends this one.
    changes = {"drain_timeout_s": 1, "connection_idle_timeout_s": 300}
    async with another_envoy(stack, tmp_path, **changes) as envoy:
        client = await Http2.open(envoy.listen_port)
        try:
            async with httpx.AsyncClient() as admin:
                url = f"http://127.0.0.1:{envoy.admin_port}/drain_listeners?graceful"
                assert (await admin.post(url)).status_code == 200
            # A drained Envoy tells a connection at its next request, answers it, and
            # closes the connection once the drain timeout has passed.
            client.start_request("GET", "/healthz")
            started, received = time.monotonic(), b""
            with contextlib.suppress(ConnectionError):
                while chunk := await asyncio.wait_for(client.reader.read(65536), 8):
                    received += chunk
            assert GOAWAY in frame_kinds(received)
            assert time.monotonic() - started < 1 + 2  # and Envoy's delayed close (5 s by default)
        finally:
            client.close()


async def test_a_request_whose_body_does_not_come_in_time_gets_408_and_a_record(
    stack: LocalStack,
) -> None:
    before = len(upstream_requests(stack))
    reader, writer = await connected(stack)
    try:
        writer.write(b"POST /mcp HTTP/1.1\r\nHost: custos\r\nContent-Length: 100\r\n\r\n{")
        started = time.monotonic()
        line = await asyncio.wait_for(reader.readline(), REQUEST_SECONDS + 3)
        assert line.startswith(b"HTTP/1.1 408 ")
        assert time.monotonic() - started < REQUEST_SECONDS + 1
    finally:
        writer.close()
    assert len(upstream_requests(stack)) == before
    (record, *_) = await edge_records(stack, 408)
    assert record.decision.reason == "request_overall_timeout"
