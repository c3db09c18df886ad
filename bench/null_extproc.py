"""An ext_proc server that does no work: each message Envoy sends gets the empty answer of
its kind, so the body passes as it came. `masking_path.py --floor no-processing` runs it
in ext_proc's place to measure what the path costs with nothing but the gRPC hops: the
same Envoy filters, ext_authz and four messages per exchange, on the same asyncio gRPC
stack as Custos's own services. A baseline for the benchmark, never a part of Custos.

    .venv/bin/python bench/null_extproc.py PORT"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import AsyncIterator

import grpc
from envoy.service.ext_proc.v3 import external_processor_pb2 as ext_proc
from envoy.service.ext_proc.v3 import external_processor_pb2_grpc as ext_proc_grpc


class NullProcessor(ext_proc_grpc.ExternalProcessorServicer):
    async def Process(
        self,
        request_iterator: AsyncIterator[ext_proc.ProcessingRequest],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[ext_proc.ProcessingResponse]:
        async for request in request_iterator:
            kind = request.WhichOneof("request")
            if kind in ("request_headers", "response_headers"):
                yield ext_proc.ProcessingResponse(**{kind: ext_proc.HeadersResponse()})
            elif kind in ("request_body", "response_body"):
                yield ext_proc.ProcessingResponse(**{kind: ext_proc.BodyResponse()})
            else:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"unexpected {kind}")


async def serve(port: int) -> None:
    server = grpc.aio.server(options=[("grpc.max_receive_message_length", 64 * 1_048_576)])
    ext_proc_grpc.add_ExternalProcessorServicer_to_server(NullProcessor(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(grace=1)


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1])))
