"""The gRPC adapter: each ext_proc stream is one exchange, message in, message out.

Small messages are handled on the event loop: a thread hop would cost more than masking
them. A big body is masked in a worker thread, so the loop goes on serving other
exchanges meanwhile (the GIL changes hands every few milliseconds); an answer that takes
longer than `mask_timeout_ms` is refused rather than waited for."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import grpc
from envoy.service.ext_proc.v3 import external_processor_pb2 as ext_proc
from envoy.service.ext_proc.v3 import external_processor_pb2_grpc as ext_proc_grpc

from extproc.engine import Masker, MaskingError
from extproc.exchange import Exchange
from extproc.metrics import MaskingMetrics
from extproc.tool_filter import ToolFilter

INLINE_BODY_BYTES = 64 * 1024


class ExternalProcessorServicer(ext_proc_grpc.ExternalProcessorServicer):
    def __init__(
        self,
        masker: Masker,
        tools: ToolFilter | None = None,
        metrics: MaskingMetrics | None = None,
        inline_body_bytes: int = INLINE_BODY_BYTES,
    ) -> None:
        self._masker = masker
        self._tools = tools
        self._metrics = metrics
        self._inline = inline_body_bytes

    async def Process(
        self,
        request_iterator: AsyncIterator[ext_proc.ProcessingRequest],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[ext_proc.ProcessingResponse]:
        exchange = Exchange(self._masker, tools=self._tools, metrics=self._metrics)
        async for request in request_iterator:
            started = time.perf_counter()
            # An ExchangeError ends the stream; Envoy, failing closed, answers the client.
            if exchange.work_bytes(request) <= self._inline:
                response = exchange.handle(request)
            else:
                response = await self._off_loop(exchange, request)
            if self._metrics is not None:
                kind = request.WhichOneof("request") or "unknown"
                self._metrics.handled(kind, time.perf_counter() - started)
            yield response

    async def _off_loop(
        self, exchange: Exchange, request: ext_proc.ProcessingRequest
    ) -> ext_proc.ProcessingResponse:
        limit = self._masker.config.mask_timeout_ms / 1000
        try:
            return await asyncio.wait_for(asyncio.to_thread(exchange.handle, request), limit)
        except TimeoutError:
            # The thread cannot be stopped from here: the masker gives up at the same
            # deadline, and what it returns is dropped.
            return exchange.refuse(MaskingError(f"masking took longer than {limit:g} s"))
