"""The gRPC adapter: each ext_proc stream is one exchange, message in, message out.

Small messages are handled on the event loop: a thread hop would cost more than masking
them. A big body is masked in a worker thread, so the loop goes on serving other
exchanges meanwhile (the GIL changes hands every few milliseconds); an answer that takes
longer than `mask_timeout_ms` is refused rather than waited for.

With an audit writer, the message that completes the client's answer goes out only once
the exchange's record is on disk: the whole body of a JSON answer; in a stream answering
a POST, the chunk carrying the last response to the request's calls (the events before it,
progress notifications, stream as they come; those after it just pass). A GET stream is
the server's own, with no response to wait for: it is recorded when it ends. An exchange
that ends before its answer does (the client went away, Envoy gave up) is recorded as
incomplete. One record per exchange, whichever comes first."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable

import grpc
from envoy.service.ext_proc.v3 import external_processor_pb2 as ext_proc
from envoy.service.ext_proc.v3 import external_processor_pb2_grpc as ext_proc_grpc

from custos.audit import audit_pb2
from custos.audit.spool import SpoolError
from custos.audit.writer import AuditWriter
from extproc.exchange import Exchange
from extproc.in_flight import InFlight
from extproc.masking.engine import Masker, MaskingError
from extproc.metrics import MaskingMetrics
from extproc.recording import ExchangeRecording
from extproc.tool_filter import ToolFilter

log = logging.getLogger(__name__)

INLINE_BODY_BYTES = 64 * 1024


class ExternalProcessorServicer(ext_proc_grpc.ExternalProcessorServicer):
    """`masker` is the masker, or what gives the one in force (the reloaded rules), asked
    once at each exchange's start: an exchange masks by one set of rules to its end."""

    def __init__(
        self,
        masker: Masker | Callable[[], Masker],
        tools: ToolFilter | None = None,
        metrics: MaskingMetrics | None = None,
        inline_body_bytes: int = INLINE_BODY_BYTES,
        audit: AuditWriter | None = None,
    ) -> None:
        self._masker = masker
        self._tools = tools
        self._metrics = metrics
        self._inline = inline_body_bytes
        self._audit = audit
        self._late: set[asyncio.Task[None]] = set()  # records of exchanges cut short
        self._in_flight = InFlight()  # the ids of each session's requests still answering

    async def Process(
        self,
        request_iterator: AsyncIterator[ext_proc.ProcessingRequest],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[ext_proc.ProcessingResponse]:
        audit = self._audit
        recording = (
            ExchangeRecording(audit.config.bodies, audit.config.query_values)
            if audit is not None
            else None
        )
        masker = self._masker if isinstance(self._masker, Masker) else self._masker()
        exchange = Exchange(
            masker,
            tools=self._tools,
            metrics=self._metrics,
            recording=recording,
            in_flight=self._in_flight,
        )
        recorded = False
        try:
            async for request in request_iterator:
                started = time.perf_counter()
                kind = request.WhichOneof("request") or "unknown"
                if kind == "request_headers" and audit is not None and audit.refuses:
                    # Before the MCP server is asked: no tool runs that cannot be recorded.
                    response = exchange.refuse(SpoolError("the audit spool takes no record now"))
                # An ExchangeError ends the stream; Envoy, failing closed, answers the client.
                elif exchange.work_bytes(request) <= self._inline:
                    response = exchange.handle(request)
                else:
                    response = await self._off_loop(exchange, request)
                if audit is not None and exchange.outcome and not recorded:
                    recorded = True
                    response = await self._record(audit, exchange, response)
                if exchange.outcome:  # answered (or refused): its ids are free again
                    exchange.release()
                if self._metrics is not None:
                    self._metrics.handled(kind, time.perf_counter() - started)
                yield response
        finally:
            exchange.release()
            if audit is not None and not recorded and recording and recording.request_id:
                self._record_late(audit, exchange)

    async def _record(
        self, audit: AuditWriter, exchange: Exchange, response: ext_proc.ProcessingResponse
    ) -> ext_proc.ProcessingResponse:
        """`response`, once the exchange is on record; a refusal if it cannot be."""
        record = exchange.audit_record(exchange.outcome)
        if record is None:  # ext_authz recorded its refusal itself
            return response
        try:
            await audit.record(record)
        except SpoolError as exc:
            return exchange.refuse(exc)
        return response

    async def settle(self) -> None:
        """Waits for the records of exchanges cut short: at shutdown, before the writer's
        last checkpoint, so none comes after it or finds the spool closed."""
        while self._late:
            await asyncio.gather(*self._late, return_exceptions=True)

    def _record_late(self, audit: AuditWriter, exchange: Exchange) -> None:
        record = exchange.audit_record("incomplete")
        if record is None:
            return
        # The stream is gone and may be cancelled: the write goes on in a task of its own.
        task = asyncio.create_task(_record_quietly(audit, record))
        self._late.add(task)
        task.add_done_callback(self._late.discard)

    async def _off_loop(
        self, exchange: Exchange, request: ext_proc.ProcessingRequest
    ) -> ext_proc.ProcessingResponse:
        limit = exchange.masker.config.mask_timeout_ms / 1000
        try:
            return await asyncio.wait_for(asyncio.to_thread(exchange.handle, request), limit)
        except TimeoutError:
            # The thread cannot be stopped from here: the masker gives up at the same
            # deadline, and what it returns is dropped.
            return exchange.refuse(MaskingError(f"masking took longer than {limit:g} s"))


async def _record_quietly(audit: AuditWriter, record: audit_pb2.Exchange) -> None:
    try:
        await audit.record(record)
    except SpoolError as exc:
        log.error("record of an exchange cut short not kept: %s", exc)
