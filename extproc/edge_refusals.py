"""The audit records of the requests Envoy's edge listener refuses itself (HTTP/1.0, a
malformed request, headers too many, too big or too slow): they never reach ext_authz or
ext_proc, so Envoy sends their access log entries here (its gRPC access log service) and
each becomes a record, as every other exchange does.

Envoy sends access log entries as they come, once: one lost in flight (ext_proc down at
that moment) is not sent again, and Envoy's own access log on stdout still has it."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator

import grpc
from envoy.config.core.v3 import base_pb2
from envoy.data.accesslog.v3 import accesslog_pb2
from envoy.service.accesslog.v3 import als_pb2, als_pb2_grpc

from custos.audit.audit_pb2 import Decision, Exchange
from custos.audit.spool import SpoolError
from custos.audit.writer import AuditWriter
from custos.request_target import kept_target

log = logging.getLogger(__name__)

LOG_NAME = "custos-edge"  # the access log's name in the bootstrap: only these are taken


class EdgeRefusals(als_pb2_grpc.AccessLogServiceServicer):
    def __init__(self, audit: AuditWriter) -> None:
        self._audit = audit

    async def StreamAccessLogs(
        self,
        request_iterator: AsyncIterator[als_pb2.StreamAccessLogsMessage],
        context: grpc.aio.ServicerContext,
    ) -> als_pb2.StreamAccessLogsResponse:
        name = ""
        async for message in request_iterator:
            if message.HasField("identifier"):  # the first message of a stream names it
                name = message.identifier.log_name
            if name != LOG_NAME:
                continue
            for entry in message.http_logs.log_entry:
                if entry.common_properties.HasField("upstream_remote_address"):
                    continue  # it reached the listener behind, which records it
                try:
                    await self._audit.record(refusal(entry))
                except SpoolError as exc:
                    log.error("edge refusal not recorded: %s", exc)
                except Exception as exc:  # an entry of a shape not foreseen: the next ones
                    log.error("edge refusal not recorded: %s", type(exc).__name__)
        return als_pb2.StreamAccessLogsResponse()


def refusal(entry: accesslog_pb2.HTTPAccessLogEntry) -> Exchange:
    """The record of one request the edge answered itself."""
    common, request, response = entry.common_properties, entry.request, entry.response
    details = response.response_code_details or "refused by Envoy"
    known = request.request_method in base_pb2.RequestMethod.values()
    method = base_pb2.RequestMethod.Name(request.request_method) if known else ""
    return Exchange(
        # A request refused before its headers were read has no x-request-id: an id of
        # our own, marked as such, so that each record is still named.
        request_id=request.request_id or f"edge-{uuid.uuid4()}",
        source_address=common.downstream_remote_address.socket_address.address,
        http_method="" if method == "METHOD_UNSPECIFIED" else method,
        # The path as the edge read it, its query's values redacted as everywhere else.
        http_path=kept_target(request.path),
        decision=Decision(effect="deny", code="envoy_refused", reason=details[:200]),
        status=response.response_code.value,
        latency_us=round(common.duration.ToMicroseconds()),
        outcome="refused",
    )
