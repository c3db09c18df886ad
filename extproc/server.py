"""Assembling and running the ext_proc gRPC service."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from pathlib import Path

import grpc
from envoy.service.accesslog.v3 import als_pb2_grpc
from envoy.service.ext_proc.v3 import external_processor_pb2_grpc as ext_proc_grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from prometheus_client import start_http_server

from custos.audit.config import AuditConfig
from custos.audit.writer import AuditWriter, open_writer
from custos.envoy_config import MAX_BODY_BYTES
from custos.health import not_serving_yet, set_status
from custos.policy.reloader import PolicyReloader
from extproc.edge_refusals import EdgeRefusals
from extproc.metrics import MaskingMetrics
from extproc.reloader import MaskingReloader
from extproc.servicer import ExternalProcessorServicer
from extproc.tool_filter import ToolFilter

log = logging.getLogger(__name__)

SERVICE_NAME = "envoy.service.ext_proc.v3.ExternalProcessor"


async def serve(
    masking: Path,
    listen: str,
    policy: Path | None = None,
    metrics_listen: str | None = None,
    audit: AuditConfig | None = None,
    health_listen: str | None = None,
    reload_seconds: float = 1.0,
) -> None:
    metrics = MaskingMetrics()
    rules = MaskingReloader(masking, metrics.record_masking_reload)
    reloader = PolicyReloader(policy, metrics.record_policy_reload) if policy is not None else None
    tools = ToolFilter(reloader) if reloader is not None else None
    writer = await open_writer(audit, "extproc", metrics.registry, "exchanges")
    if metrics_listen is not None:
        host, _, port_text = metrics_listen.rpartition(":")
        start_http_server(int(port_text), host, registry=metrics.registry)
    health_servicer = health.aio.HealthServicer()
    servers = await not_serving_yet(health_servicer, SERVICE_NAME, health_listen)
    # Envoy may send a buffered body as large as its own bound in one message.
    server = grpc.aio.server(
        options=[("grpc.max_receive_message_length", MAX_BODY_BYTES + 1_048_576)]
    )
    servicer = ExternalProcessorServicer(lambda: rules.masker, tools, metrics, audit=writer)
    ext_proc_grpc.add_ExternalProcessorServicer_to_server(servicer, server)
    if writer is not None:  # the requests Envoy's edge refuses itself, on record too
        als_pb2_grpc.add_AccessLogServiceServicer_to_server(EdgeRefusals(writer), server)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    port = server.add_insecure_port(listen)
    await server.start()
    await set_status(health_servicer, SERVICE_NAME, health_pb2.HealthCheckResponse.SERVING)
    servers.append(server)
    log.info("ext_proc listening on %s:%d", listen.rpartition(":")[0], port)
    if health_listen is not None:
        log.info("ext_proc health checks on %s", health_listen)
    watchers = [asyncio.create_task(rules.watch(reload_seconds))]
    if reloader is not None:
        watchers.append(asyncio.create_task(reloader.watch(reload_seconds)))
    audit_health = (
        asyncio.create_task(serving_while_recording(writer, health_servicer))
        if writer is not None
        else None
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("ext_proc stopping")
    await set_status(health_servicer, SERVICE_NAME, health_pb2.HealthCheckResponse.NOT_SERVING)
    for task in [*watchers, audit_health]:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    await asyncio.gather(*(s.stop(grace=5) for s in servers))
    if writer is not None:
        await servicer.settle()
        await writer.close()


async def serving_while_recording(
    writer: AuditWriter, health_servicer: health.aio.HealthServicer, interval: float = 1.0
) -> None:
    """NOT_SERVING while exchanges are refused for want of a record (spool full, failing or
    broken): a readiness probe takes the pod out of rotation, and a broken spool, which
    only a restart mends, fails the liveness probe too. The writer is asked every
    `interval` seconds: often enough for probes, which come every few seconds (tests ask
    more often, to see the change without waiting)."""
    serving = True
    while True:
        await asyncio.sleep(interval)
        now = not writer.refuses
        if now != serving:
            serving = now
            status = (
                health_pb2.HealthCheckResponse.SERVING
                if now
                else health_pb2.HealthCheckResponse.NOT_SERVING
            )
            await set_status(health_servicer, SERVICE_NAME, status)
            log.warning(
                "ext_proc %s", "serving again" if now else "refusing: no audit record can be kept"
            )
