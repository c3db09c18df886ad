"""The gRPC adapter: each ext_proc stream is one exchange, message in, message out."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
from envoy.service.ext_proc.v3 import external_processor_pb2 as ext_proc
from envoy.service.ext_proc.v3 import external_processor_pb2_grpc as ext_proc_grpc

from extproc.engine import Masker
from extproc.exchange import Exchange
from extproc.metrics import MaskingMetrics
from extproc.tool_filter import ToolFilter


class ExternalProcessorServicer(ext_proc_grpc.ExternalProcessorServicer):
    def __init__(
        self,
        masker: Masker,
        tools: ToolFilter | None = None,
        metrics: MaskingMetrics | None = None,
    ) -> None:
        self._masker = masker
        self._tools = tools
        self._metrics = metrics

    async def Process(
        self,
        request_iterator: AsyncIterator[ext_proc.ProcessingRequest],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[ext_proc.ProcessingResponse]:
        exchange = Exchange(self._masker, tools=self._tools, metrics=self._metrics)
        async for request in request_iterator:
            # An ExchangeError ends the stream; Envoy, failing closed, answers the client.
            yield exchange.handle(request)
