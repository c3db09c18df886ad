"""An open-loop HTTP/1.1 load generator: requests at a constant rate, latency measured
from each request's scheduled send time.

Closed-loop tools (wrk included) wait for a response before sending the next request,
so a stall delays the requests that would have seen it and the stall all but vanishes
from the percentiles ("coordinated omission"). Here request i is due at start + i/rate
whatever happened before; if every connection is busy it waits in a queue, and that
wait counts in its latency, as it would for a real client.

Pacing runs in a thread: asyncio's timers wake through epoll, whose timeout is rounded
up to the next millisecond, which would add up to 1 ms to every latency; a thread
waiting on a lock wakes within tens of microseconds and hands the slot to the event
loop. The pacing error is measured and reported anyway ("late")."""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

CHECK_TIMEOUT = 10.0
_STOP = -1.0  # tells a connection worker that no more slots will come


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    path: str
    headers: Mapping[str, str]
    body: bytes

    def request(self) -> bytes:
        lines = [
            f"POST {self.path} HTTP/1.1",
            f"host: {self.host}:{self.port}",
            f"content-length: {len(self.body)}",
            *(f"{name}: {value}" for name, value in self.headers.items()),
        ]
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body


@dataclass(frozen=True)
class Sample:
    scheduled: float
    sent: float
    done: float
    status: int


@dataclass(frozen=True)
class OpenLoopResult:
    rate: float
    seconds: float
    scheduled: int
    samples: tuple[Sample, ...]
    errors: int  # connection failures: no status at all

    @property
    def non_200(self) -> int:
        return sum(1 for s in self.samples if s.status != 200) + self.errors

    def latency_ms(self, percentile: float) -> float:
        """From scheduled time to the end of the response (coordinated-omission safe)."""
        return _percentile([s.done - s.scheduled for s in self.samples], percentile) * 1e3

    def service_ms(self, percentile: float) -> float:
        """From the actual send: the server's share, without queueing or pacing error."""
        return _percentile([s.done - s.sent for s in self.samples], percentile) * 1e3

    def late_ms(self, percentile: float) -> float:
        """How late requests left compared with their schedule (the generator's error)."""
        return _percentile([s.sent - s.scheduled for s in self.samples], percentile) * 1e3

    @property
    def achieved_rate(self) -> float:
        if len(self.samples) < 2:
            return 0.0
        span = max(s.done for s in self.samples) - min(s.scheduled for s in self.samples)
        return len(self.samples) / span


def _percentile(values: list[float], percentile: float) -> float:
    """Nearest-rank percentile; 100 is the maximum."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, math.ceil(len(ordered) * percentile / 100))
    return ordered[min(len(ordered), rank) - 1]


async def send_one(target: Target) -> tuple[int, bytes]:
    """A single request on a fresh connection, bounded in time: for checks before measuring."""
    async with asyncio.timeout(CHECK_TIMEOUT):
        reader, writer = await asyncio.open_connection(target.host, target.port)
        try:
            writer.write(target.request())
            response = await _read_response(reader)
            return response.status, response.body
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


async def run_open_loop(
    target: Target, rate: float, seconds: float, connections: int
) -> OpenLoopResult:
    count = int(rate * seconds)
    slots: asyncio.Queue[float] = asyncio.Queue()
    tally = _Tally()
    loop = asyncio.get_running_loop()
    stop = threading.Event()
    start = time.monotonic() + 0.2  # let the connections open before the first slot
    pacer = threading.Thread(
        target=_pace,
        args=(loop, slots, start, rate, count, connections, stop),
        name="open-loop-pacer",
        daemon=True,
    )
    workers = [_worker(target, slots, tally) for _ in range(connections)]
    pacer.start()
    try:
        await asyncio.wait_for(asyncio.gather(*workers), seconds + 30)
    finally:
        stop.set()  # also when interrupted: the thread must not outlive the run
        pacer.join()
    return OpenLoopResult(rate, seconds, count, tuple(tally.samples), tally.errors)


def _pace(
    loop: asyncio.AbstractEventLoop,
    slots: asyncio.Queue[float],
    start: float,
    rate: float,
    count: int,
    workers: int,
    stop: threading.Event,
) -> None:
    for index in range(count):
        due = start + index / rate
        # Event.wait sleeps precisely and returns early when the run is abandoned.
        if stop.wait(max(0.0, due - time.monotonic())):
            break
        loop.call_soon_threadsafe(slots.put_nowait, due)
    for _ in range(workers):
        with contextlib.suppress(RuntimeError):  # the loop is closed if the run was abandoned
            loop.call_soon_threadsafe(slots.put_nowait, _STOP)


@dataclass
class _Tally:
    samples: list[Sample] = field(default_factory=list)
    errors: int = 0


@dataclass(frozen=True)
class _Response:
    status: int
    body: bytes
    keep_alive: bool


async def _worker(target: Target, slots: asyncio.Queue[float], tally: _Tally) -> None:
    request = target.request()
    connection: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
    try:
        while (due := await slots.get()) != _STOP:
            try:
                if connection is None:
                    connection = await asyncio.open_connection(target.host, target.port)
                reader, writer = connection
                sent = time.monotonic()
                writer.write(request)
                response = await _read_response(reader)
            except (OSError, asyncio.IncompleteReadError, ValueError):
                tally.errors += 1
                connection = await _close(connection)
                continue
            tally.samples.append(Sample(due, sent, time.monotonic(), response.status))
            if not response.keep_alive:
                connection = await _close(connection)
    finally:
        await _close(connection)


async def _close(connection: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None) -> None:
    """Close if open; returns None so callers can write `connection = await _close(...)`."""
    if connection is not None:
        connection[1].close()
        with contextlib.suppress(OSError):
            await connection[1].wait_closed()


async def _read_response(reader: asyncio.StreamReader) -> _Response:
    """Status and body of one HTTP/1.1 response; Envoy frames every response with
    content-length or chunked encoding, so keep-alive connections stay usable."""
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
    status_line, *header_lines = head.rstrip("\r\n").split("\r\n")
    status = int(status_line.split(" ", 2)[1])
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    keep_alive = headers.get("connection", "").lower() != "close"
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        body = await _read_chunked(reader)
    else:
        body, keep_alive = b"", False  # unframed: the body would run to the close
    return _Response(status, body, keep_alive)


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    body = bytearray()
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")  # no trailers from Envoy here, just the end
            return bytes(body)
        body += await reader.readexactly(size)
        await reader.readexactly(2)
