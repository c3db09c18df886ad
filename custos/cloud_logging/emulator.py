"""A local Cloud Logging API server (google.logging.v2 over gRPC) for the tests and the
local stack. NOT Google Cloud Logging: everything is in memory, no credential is asked
for, and it binds loopback unless told otherwise.

The real client library talks to it unchanged (see `clients.py`). The servicers are thin
adapters over `EntryStore` and `ConfigStore`; no generated `_grpc` stubs are installed
for google.logging.v2, so the methods are served through a generic handler with the
request and response classes behind google-cloud-logging's proto-plus types. (Not the
`google/logging/v2/*_pb2` modules xds-protos also ships: importing those next to
google-cloud-logging fails on duplicate descriptors.)

Tests start it on port 0, inject faults into WriteLogEntries and read what it stored."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from concurrent import futures
from types import TracebackType
from typing import Any

import grpc
from google.cloud.logging_v2 import types

from custos.cloud_logging.api_error import ApiError
from custos.cloud_logging.config_store import ConfigStore
from custos.cloud_logging.entry_store import EntryStore, WriteStats
from custos.cloud_logging.faults import MESSAGES, Fault, FaultPlan
from custos.errors import StackError

__all__ = ["Emulator", "WriteStats", "serve"]

log = logging.getLogger(__name__)

LOGGING_SERVICE = "google.logging.v2.LoggingServiceV2"
CONFIG_SERVICE = "google.logging.v2.ConfigServiceV2"
# Above the API's 10 MB request limit, so an oversized request gets the API's own
# INVALID_ARGUMENT rather than gRPC's RESOURCE_EXHAUSTED.
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
WORKERS = 8
STOP_GRACE_S = 1.0
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Emulator:
    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self._requested_port = port
        self._port: int | None = None
        self._entries = EntryStore()
        self._config = ConfigStore()
        self._faults = FaultPlan()
        self._stopping = threading.Event()  # cuts injected delays short on stop
        self._server: grpc.Server | None = None

    # Lifecycle

    def start(self) -> Emulator:
        server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="logging-emu"),
            handlers=self._handlers(),
            options=[
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                # Two emulators on one fixed port must fail, not share it silently.
                ("grpc.so_reuseport", 0),
            ],
        )
        address = f"{self.host}:{self._requested_port}"
        try:
            self._port = server.add_insecure_port(address)
        except RuntimeError as exc:
            raise StackError(f"Cloud Logging emulator cannot listen on {address}") from exc
        server.start()
        self._server = server
        return self

    def stop(self, grace: float | None = STOP_GRACE_S) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.stop(grace).wait()
            self._server = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the emulator is not started")
        return self._port

    @property
    def endpoint(self) -> str:
        """host:port, as `clients.logging_client(endpoint=...)` takes it."""
        return f"{self.host}:{self.port}"

    # Faults, for the next `times` WriteLogEntries calls (None: every call until cleared)

    def fail_writes(
        self, code: grpc.StatusCode, times: int | None = 1, message: str | None = None
    ) -> None:
        if code == grpc.StatusCode.OK:
            raise ValueError("a fault needs an error status")
        self._faults.set(Fault(code, message or MESSAGES.get(code, code.name)), times)

    def delay_writes(self, seconds: float, times: int | None = 1) -> None:
        """Answer late, then normally: the entries are stored even if the caller gave up."""
        self._faults.set(Fault(delay_seconds=seconds), times)

    def clear_faults(self) -> None:
        self._faults.clear()

    # What is stored

    def entries(self, log_name: str) -> list[types.LogEntry]:
        """The entries stored in one log (`projects/P/logs/L`), in arrival order."""
        return [types.LogEntry.wrap(entry) for entry in self._entries.entries(log_name)]

    def log_names(self) -> list[str]:
        return self._entries.log_names()

    def write_stats(self) -> WriteStats:
        return self._entries.stats()

    # gRPC adapters

    def _write(self, request: Any) -> Any:
        self._entries.received()
        fault = self._faults.take()
        try:
            if fault and fault.delay_seconds:
                self._stopping.wait(fault.delay_seconds)
            if fault and fault.code:
                raise ApiError(fault.code, fault.message)
            self._entries.write(request)
        except ApiError:
            self._entries.failed()
            raise
        return types.WriteLogEntriesResponse.pb()()

    def _handlers(self) -> list[grpc.GenericRpcHandler]:
        t, config = types, self._config
        logging_methods = {
            "WriteLogEntries": _unary(
                self._write, t.WriteLogEntriesRequest, t.WriteLogEntriesResponse
            ),
            "ListLogEntries": _unary(
                self._entries.list, t.ListLogEntriesRequest, t.ListLogEntriesResponse
            ),
        }
        config_methods = {
            "GetBucket": _unary(config.get_bucket, t.GetBucketRequest, t.LogBucket),
            "CreateBucket": _unary(config.create_bucket, t.CreateBucketRequest, t.LogBucket),
            "UpdateBucket": _unary(config.update_bucket, t.UpdateBucketRequest, t.LogBucket),
            "ListBuckets": _unary(config.list_buckets, t.ListBucketsRequest, t.ListBucketsResponse),
            "GetSink": _unary(config.get_sink, t.GetSinkRequest, t.LogSink),
            "CreateSink": _unary(config.create_sink, t.CreateSinkRequest, t.LogSink),
            "UpdateSink": _unary(config.update_sink, t.UpdateSinkRequest, t.LogSink),
            "ListSinks": _unary(config.list_sinks, t.ListSinksRequest, t.ListSinksResponse),
        }
        return [
            grpc.method_handlers_generic_handler(LOGGING_SERVICE, logging_methods),
            grpc.method_handlers_generic_handler(CONFIG_SERVICE, config_methods),
        ]


def serve(host: str, port: int) -> None:
    """Serve until SIGTERM or SIGINT (the `custos logging emulator` command)."""
    emulator = Emulator(host, port).start()
    log.warning(
        "Cloud Logging emulator on %s: a LOCAL EMULATOR, not Google Cloud Logging "
        "(in memory, no authentication; nothing written here is kept)",
        emulator.endpoint,
    )
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in _STOP_SIGNALS}
    try:
        # A timeout, so the main thread wakes to run the signal handler on any platform.
        while not stop.wait(0.5):
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        emulator.stop()
        log.info("Cloud Logging emulator stopped")


def _unary(
    method: Callable[[Any], Any], request_type: Any, response_type: Any
) -> grpc.RpcMethodHandler:
    def handle(request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return method(request)
        except ApiError as exc:
            context.abort(exc.code, exc.message)

    return grpc.unary_unary_rpc_method_handler(
        handle,
        request_deserializer=request_type.pb().FromString,
        response_serializer=response_type.pb().SerializeToString,
    )
